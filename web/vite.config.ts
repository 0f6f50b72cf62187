// The console is built into dist/ with hashed asset names; vigild serves
// dist/ on the admin listener (docs/console.md). Nothing is inlined: the
// CSP the center sends allows scripts and styles only from files of its
// own origin.
import { defineConfig } from "vite";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2020",
    chunkSizeWarningLimit: 400,
  },
});
