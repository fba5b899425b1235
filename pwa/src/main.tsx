import { render } from "preact";
import { App } from "./app";
import { Session } from "./session";
import "./style.css";

const session = new Session();
let waiting: ServiceWorker | null = null;
/** The patient chose "Update now" in this tab: only this tab reloads when the new worker takes over. */
let accepted = false;
/** Another tab updated: the new worker controls this one too; it reloads when the patient chooses. */
let updatedElsewhere = false;

/**
 * A new version waits until the patient chooses to update (never forced mid-entry). Only the tab
 * where they chose it reloads; every other open tab keeps what is on its screen and offers a
 * reload (its unsaved entry is kept in this tab's drafts either way).
 */
function updateReady(): (() => void) | null {
  if (updatedElsewhere) return () => location.reload();
  if (!waiting) return null;
  const worker = waiting;
  return () => {
    accepted = true;
    worker.postMessage({ type: "SKIP_WAITING" });
  };
}

if ("serviceWorker" in navigator) {
  void navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).then((registration) => {
    if (registration.waiting && navigator.serviceWorker.controller) waiting = registration.waiting;
    registration.addEventListener("updatefound", () => {
      const installing = registration.installing;
      installing?.addEventListener("statechange", () => {
        if (installing.state === "installed" && navigator.serviceWorker.controller) waiting = installing;
      });
    });
  });
  let reloading = false;
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (!waiting || reloading) return;
    if (accepted) {
      reloading = true;
      location.reload();
    } else {
      updatedElsewhere = true;
    }
  });
}

window.addEventListener("unhandledrejection", (event) => {
  if (session.isWipeCasualty(event.reason)) event.preventDefault();
});
session.startTriggers();
void session.sync();
const root = document.getElementById("app");
if (root) render(<App session={session} updateReady={updateReady} />, root);
