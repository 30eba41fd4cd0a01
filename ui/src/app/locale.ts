// WebKitGTK reports the POSIX locale's name as the browser language ("C" under LANG=C.UTF-8,
// common on servers and in containers). It is not a BCP 47 tag, so libraries that pass
// `navigator.language` to `Intl` (uPlot's number format does, when its module loads) throw a
// RangeError. Report a valid tag instead; a real language tag is left alone.
export function ensureValidLanguage(nav: Navigator = navigator): void {
  try {
    new Intl.NumberFormat(nav.language);
  } catch {
    Object.defineProperty(nav, "language", { get: () => "en-US", configurable: true });
  }
}
