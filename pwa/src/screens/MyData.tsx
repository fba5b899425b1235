import { useEffect, useState } from "preact/hooks";
import { metaGet, metaSet } from "../store/meta";
import { useApp } from "./context";
import { CareTeam } from "./mydata/CareTeam";
import { Consent } from "./mydata/Consent";
import { Deletion } from "./mydata/Deletion";
import { Export } from "./mydata/Export";
import { Preferences } from "./mydata/Preferences";
import "./MyData.css";

/** Who is signed in, language and time zone, the care team, consent, the data download and the
 * deletion request. */
export function MyData({ revision }: { revision: number }) {
  const { session, t } = useApp();
  const [name, setName] = useState<string | undefined>();

  useEffect(() => {
    void metaGet<string>(session.db, "display_name").then(setName);
  }, [session, revision]);

  // The name as the clinic has it now (kept for offline).
  useEffect(() => {
    void session.api
      .profile()
      .then(async (profile) => {
        await metaSet(session.db, "display_name", profile.display_name);
        setName(profile.display_name);
      })
      .catch(() => undefined); // offline: the kept name
  }, [session]);

  return (
    <main id="main" class="mydata">
      <h1>{t("mydata.title")}</h1>
      <p class="who">{name ? t("mydata.signedInAs", { name }) : t("mydata.signedIn")}</p>
      <p class="hint">{t("mydata.signOutHint")}</p>
      <Preferences revision={revision} />
      <CareTeam />
      <Consent />
      <Export />
      <Deletion />
    </main>
  );
}
