/** The two DOM helpers every part of the scan page uses. */

export const $ = (id) => document.getElementById(id);

/** Change an element's text only when it differs (live regions announce every change). */
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}
