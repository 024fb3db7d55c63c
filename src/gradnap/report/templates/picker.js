// The layer page's group picker: show one group's section, or two side by side. The
// state lives in the URL's fragment ("#A" or "#A~B"), so links, reloads and the back
// button work; without JavaScript every section is shown.
(function () {
  "use strict";
  var view = document.getElementById("view");
  var pick = document.getElementById("pick");
  var other = document.getElementById("compare");
  if (!view || !pick || !other) return;
  var sections = Array.prototype.slice.call(view.querySelectorAll("section.group"));
  if (!sections.length) return;
  var ids = sections.map(function (s) { return s.id; });

  function show(a, b) {
    if (b === a) b = "";
    sections.forEach(function (s) {
      s.hidden = s.id !== a && s.id !== b;
      s.classList.toggle("second", s.id === b);
    });
    view.classList.toggle("compare", b !== "");
    pick.value = a;
    other.value = b;
  }

  function fromHash() {
    var parts = decodeURIComponent(location.hash.slice(1)).split("~");
    var a = ids.indexOf(parts[0]) >= 0 ? parts[0] : ids[0];
    var b = parts.length > 1 && ids.indexOf(parts[1]) >= 0 ? parts[1] : "";
    show(a, b);
  }

  function go() {
    var hash = pick.value + (other.value && other.value !== pick.value ? "~" + other.value : "");
    if (location.hash.slice(1) === hash) fromHash();
    else location.hash = hash;
  }

  pick.addEventListener("change", go);
  other.addEventListener("change", go);
  window.addEventListener("hashchange", fromHash);
  document.body.classList.add("picking");
  fromHash();
})();
