import type { NextConfig } from "next";

const nextConfig: NextConfig = {
  poweredByHeader: false,
  // The tenant's program was type-checked by the platform before this project was made, with
  // the same rules on every back end; here its packages may bring other type definitions
  // (@types/*), which must not fail a build the platform accepted.
  typescript: { ignoreBuildErrors: true },
  // Source maps of the server code, next to it: lib/invoke.ts reads them to name the tenant's
  // files in stack traces.
  experimental: { serverSourceMaps: true },
};

export default nextConfig;
