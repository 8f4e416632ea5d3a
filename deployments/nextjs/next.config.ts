import type { NextConfig } from "next";
import { withWorkflow } from "workflow/next";

const nextConfig: NextConfig = {
  poweredByHeader: false,
};

// withWorkflow compiles "use step" / "use workflow" functions (lib/step.ts, lib/workflow.ts).
export default withWorkflow(nextConfig);
