// Every path but /api/invoke/*: the tenant's fetch handler (lib/http.ts).
import { handleHttp } from "../../lib/http";

export const runtime = "nodejs";
export const dynamic = "force-dynamic";
export const maxDuration = 60;

export const GET = handleHttp;
export const HEAD = handleHttp;
export const POST = handleHttp;
export const PUT = handleHttp;
export const PATCH = handleHttp;
export const DELETE = handleHttp;
export const OPTIONS = handleHttp;
