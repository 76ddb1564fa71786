/**
 * A backstop against leaks: the exact contents of the credential files this process holds (Git and
 * forge tokens, an SSH key, registry passwords) are replaced by `***` in every log line, error
 * message, refusal and pull request body, wherever they came from (a tool's output quoting a file,
 * a server echoing a header). The first defence stays not passing them there at all.
 */
const held = new Set<string>();

/** Registers a secret (each line of a multi-line one, such as a key); short strings are not, lest ordinary words be masked. */
export function holdSecret(value: string): void {
  for (const part of [value.trim(), ...value.split('\n').map((l) => l.trim())]) {
    if (part.length < 8) continue;
    held.add(part);
    // As a JSON log line writes it (quotes, backslashes and control characters escaped).
    const escaped = JSON.stringify(part).slice(1, -1);
    if (escaped !== part) held.add(escaped);
  }
}

/** Forgets a secret that can no longer be used (an expired token), so the held set does not grow for the process's life. */
export function forgetSecret(value: string): void {
  held.delete(value.trim());
}

/** `text` with every held secret masked. */
export function scrub(text: string): string {
  let out = text;
  for (const secret of held) if (out.includes(secret)) out = out.replaceAll(secret, '***');
  return out;
}
