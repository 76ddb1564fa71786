/** Whether `text` holds an ASCII control character (what a header, a URL or a terminal may read otherwise). */
export function hasControlCharacter(text: string): boolean {
  return [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}
