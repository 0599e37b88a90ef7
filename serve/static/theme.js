// Applies the saved (else the system's) theme before the first paint, so the page never flashes
// the wrong one. A classic script in <head>, not a module: modules run after parsing.
(function () {
  var t = localStorage.getItem("eqx-theme");
  if (!t) t = window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  document.documentElement.dataset.theme = t;
})();
