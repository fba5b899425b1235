import { useApp } from "./context";

/** Placeholder until the screen is built (issue 18). */
export function History({ revision }: { revision: number }) {
  const { t } = useApp();
  void revision;
  return (
    <main id="main">
      <h1>{t("history.title")}</h1>
    </main>
  );
}
