// One config: the app (Preact), its service worker (Workbox injectManifest from src/sw.ts)
// and the unit tests (Vitest in Node with fake-indexeddb).
import preact from "@preact/preset-vite";
import { VitePWA } from "vite-plugin-pwa";
import { defineConfig } from "vitest/config";

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
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/setup.ts"],
  },
});
