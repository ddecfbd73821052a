// A message longer than one message may be: its length as the server counts it, and its parts for sending.

/** Characters as the server counts them (code points: an emoji is one, not two UTF-16 units). */
export function textLength(text) {
  return Array.from(text).length;
}

// Where a reader would break a text, best first: a paragraph, a line, a sentence, a word.
const BREAKS = [/\n\s*\n/g, /\n/g, /[.!?…](?=\s)/g, /\s/g];

/** The text in parts of at most `limit` characters, in order, each broken where a reader would break it. */
export function splitText(text, limit) {
  const parts = [];
  let rest = Array.from(text.trim());
  while (rest.length > limit) {
    const window = rest.slice(0, limit).join("");
    let cut = 0;
    for (const pattern of BREAKS) {
      for (const match of window.matchAll(pattern)) {
        const end = match.index + (pattern.source.startsWith("[") ? match[0].length : 0);
        if (end >= window.length / 2) cut = end;
      }
      if (cut) break;
    }
    const head = cut ? Array.from(window.slice(0, cut)) : rest.slice(0, limit);
    parts.push(head.join("").trim());
    rest = Array.from(rest.slice(head.length).join("").trimStart());
  }
  if (rest.length) parts.push(rest.join(""));
  return parts.filter((part) => part);
}
