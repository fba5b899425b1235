import { render } from "preact";
import { App } from "./app";
import { Session } from "./session";
import "./style.css";

const session = new Session();
let waiting: ServiceWorker | null = null;

/** A new version waits until the patient chooses to update (never forced mid-entry). */
function updateReady(): (() => void) | null {
  if (!waiting) return null;
  const worker = waiting;
  return () => worker.postMessage({ type: "SKIP_WAITING" });
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
    if (waiting && !reloading) {
      reloading = true;
      location.reload();
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
