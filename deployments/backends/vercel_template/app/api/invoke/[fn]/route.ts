// POST /api/invoke/<fn>: the same contract as the platform's local runtime.
import { handleInvoke } from "../../../../lib/invoke";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";
export const maxDuration = 60;

export async function POST(request: Request, context: { params: Promise<{ fn: string }> }) {
  const { fn } = await context.params;
  return handleInvoke(request, fn);
}
