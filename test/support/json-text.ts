/** A response body parsed as JSON, or undefined when it is not JSON (an empty 304, a proxy's HTML page). */
export function jsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
