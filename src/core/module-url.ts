/**
 * The URL of a module that sits beside the calling one, for what loads modules
 * by URL at run time (worker threads): `.ts` when Swoosh runs from its sources
 * (through tsx), `.js` in the compiled `dist/` that `npm run build` writes.
 * Import specifiers are rewritten by the compiler; these are plain strings.
 */
export function siblingModuleUrl(pathWithoutExtension: string, callerUrl: string): string {
  return new URL(pathWithoutExtension + (callerUrl.endsWith(".ts") ? ".ts" : ".js"), callerUrl).href;
}
