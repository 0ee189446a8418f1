import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

const root = path.dirname(fileURLToPath(import.meta.url));
const COMPRESSIBLE = /\.(js|mjs|css|html|svg|json|txt|map)$/;

/** Writes .gz and .br next to every compressible file once the bundle is on disk: the server never compresses at request time. */
function precompress(): Plugin {
  return {
    name: 'berth-precompress',
    apply: 'build',
    closeBundle() {
      const walk = (dir: string): string[] =>
        readdirSync(dir).flatMap((f) => {
          const p = path.join(dir, f);
          return statSync(p).isDirectory() ? walk(p) : [p];
        });
      for (const file of walk(path.join(root, 'dist'))) {
        if (!COMPRESSIBLE.test(file)) continue;
        const body = readFileSync(file);
        writeFileSync(`${file}.gz`, gzipSync(body, { level: 9 }));
        writeFileSync(
          `${file}.br`,
          brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } }),
        );
      }
    },
  };
}

export default defineConfig({
  root,
  base: '/',
  // No @vitejs/plugin-react: esbuild's automatic runtime is all the JSX transform needs.
  esbuild: { jsx: 'automatic' },
  plugins: [precompress()],
  build: { outDir: path.join(root, 'dist'), emptyOutDir: true, target: 'es2020', sourcemap: false },
  server: {
    // `npm run dashboard:dev` proxies the API (default port 8080) so the app stays same-origin.
    proxy: { '/v1': { target: process.env.BERTH_API_URL ?? 'http://127.0.0.1:8080', changeOrigin: false } },
  },
});
