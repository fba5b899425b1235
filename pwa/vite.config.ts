// One config: the app (Preact), its service worker (Workbox injectManifest from src/sw.ts)
// and the unit tests (Vitest in Node with fake-indexeddb).
import preact from "@preact/preset-vite";
import { VitePWA } from "vite-plugin-pwa";
import { defineConfig } from "vitest/config";

// The Node process's environment, without pulling Node's types into the app's type check.
const LIVE = Boolean((globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env["CSU_LIVE"]);

export default defineConfig({
  base: "/app/",
  plugins: [
    preact(),
    VitePWA({
      strategies: "injectManifest",
      srcDir: "src",
      filename: "sw.ts",
      // Django serves the manifest (it carries the clinic's name) and main.tsx registers the
      // worker: no inline script, no generated manifest.
      manifest: false,
      injectRegister: false,
      injectManifest: {
        globPatterns: ["**/*.{js,css,html,png,svg}"],
      },
    }),
  ],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Vite's modulepreload polyfill is an inline-free module, but keep output plain files only.
    assetsInlineLimit: 0,
    sourcemap: false,
  },
  test: {
    environment: "node",
    // test/live.test.ts needs a live server: tests/pwa/test_sync_engine_live.py runs it (with
    // CSU_LIVE set); `vitest run` alone never lists it, rather than reporting it skipped.
    include: LIVE ? ["test/live.test.ts"] : ["test/**/*.test.ts"],
    exclude: LIVE ? [] : ["test/live.test.ts"],
    setupFiles: ["test/setup.ts"],
  },
});
