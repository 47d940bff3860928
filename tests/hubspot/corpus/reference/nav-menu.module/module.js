(function () {
  var items = document.querySelectorAll(".site-nav li.hs-item-has-children");
  Array.prototype.forEach.call(items, function (el) {
    el.addEventListener("focusin", function () { this.classList.add("is-open"); });
    el.addEventListener("focusout", function () { this.classList.remove("is-open"); });
  });
})();