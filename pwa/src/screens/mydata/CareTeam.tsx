import { useEffect, useState } from "preact/hooks";
import { NetworkError } from "../../api/client";
import type { CareTeamMember } from "../../api/types";
import { formatDay } from "../../i18n";
import { errorText } from "../errors";
import { useApp } from "../context";

/** Who looks after the patient at their clinic: names and roles, from the server (no contact
 * details: those are the clinic's to give). Offline, the card says it cannot tell. */
export function CareTeam() {
  const { session, t, locale } = useApp();
  const [team, setTeam] = useState<CareTeamMember[] | undefined>();
  const [problem, setProblem] = useState("");

  useEffect(() => {
    session.api
      .careTeam()
      .then(setTeam)
      .catch((error: unknown) => setProblem(error instanceof NetworkError ? t("careTeam.offline") : errorText(error, t)));
  }, [session]);

  return (
    <section class="card" aria-labelledby="care-team-title">
      <h2 id="care-team-title">{t("careTeam.title")}</h2>
      {team && team.length === 0 && <p>{t("careTeam.none")}</p>}
      {team && team.length > 0 && (
        <ul class="care-team">
          {team.map((member) => (
            <li key={`${member.name}-${member.since}`}>
              {t(member.care_role === "primary" ? "careTeam.primary" : "careTeam.secondary", { name: member.name })}{" "}
              <span class="hint">{t("careTeam.since", { date: formatDay(locale, member.since) })}</span>
            </li>
          ))}
        </ul>
      )}
      {problem && <p class="error">{problem}</p>}
    </section>
  );
}
