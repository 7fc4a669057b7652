import { fileURLToPath } from "node:url";

import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Served by `onramp demo --keep-open` at /app/; `npm run dev` proxies the API to a local
// `onramp serve` (ONRAMP_URL, default http://localhost:8000).
export default defineConfig({
  base: "/app/",
  plugins: [react()],
  resolve: {
    alias: {
      "@onramp/client": fileURLToPath(new URL("../../clients/typescript/src/index.ts", import.meta.url)),
    },
  },
  server: { proxy: { "/api": process.env.ONRAMP_URL ?? "http://localhost:8000" } },
  build: { outDir: "dist", emptyOutDir: true },
});
