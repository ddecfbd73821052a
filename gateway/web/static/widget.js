/* Baton webchat widget: one tag on any site opens a chat with your team and its AI agent.
 *
 *   <script src="https://support.example.com/widget.js" data-channel="webchat" async></script>
 *
 * This loader only reads its own tag (the Baton origin and the channel) and imports the widget's ES
 * modules from that origin (/embed/widget/main.js). Module scripts are fetched in CORS mode, so the
 * origin serves them with Access-Control-Allow-Origin. The widget talks only to that origin, with the
 * visitor token it issued, and keeps its markup and styles in a shadow root.
 */
(function () {
  "use strict";

  const script = document.currentScript;
  if (!script || window.BatonWidget) return;
  const origin = new URL(script.src, location.href).origin;
  const channel = script.getAttribute("data-channel") || "webchat";
  const ready = import(`${origin}/embed/widget/main.js`).then((widget) => widget.start({ origin, channel }));
  ready.catch((error) => console.error("Baton widget: could not load", error));
  window.BatonWidget = {
    open: () => ready.then((widget) => widget.open()),
    close: () => ready.then((widget) => widget.close()),
  };
})();
