(function () {
  var el = document.querySelector('.event-banner__countdown');
  if (!el) return;
  var starts = Number(el.dataset.starts);
  el.textContent = Math.max(0, Math.ceil((starts - Date.now()) / 86400000)) + ' days to go';
})();