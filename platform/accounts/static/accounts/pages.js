// Account pages (accounts/web): a link's secret arrives in the URL fragment, which the browser
// never sends to any server. Copy it into the form's field(s), remove it from the address bar and
// the history, and (where the form asks for it) submit at once, so the secret reaches the server
// only in a POST body. No inline script: the pages run under a strict Content-Security-Policy.
(function () {
  "use strict";

  function fragmentValues() {
    var values = {};
    var hash = window.location.hash.replace(/^#/, "");
    if (!hash) {
      return values;
    }
    hash.split("&").forEach(function (part) {
      var index = part.indexOf("=");
      if (index > 0) {
        try {
          values[decodeURIComponent(part.slice(0, index))] = decodeURIComponent(part.slice(index + 1));
        } catch (error) {
          // A malformed escape: leave that value out; the server reports what is missing.
        }
      }
    });
    return values;
  }

  function start() {
    var values = fragmentValues();
    var found = false;
    document.querySelectorAll("[data-fragment]").forEach(function (holder) {
      var names = holder.getAttribute("data-fragment").split(" ");
      var complete = names.every(function (name) {
        return Boolean(values[name]);
      });
      if (!complete) {
        return;
      }
      found = true;
      names.forEach(function (name) {
        var input = holder.querySelector('[name="' + name + '"]');
        if (input) {
          input.value = values[name];
        }
      });
      if (holder.hasAttribute("hidden")) {
        holder.removeAttribute("hidden");
        document.querySelectorAll("[data-fragment-alternative]").forEach(function (other) {
          other.setAttribute("hidden", "");
        });
      }
      var form = holder.tagName === "FORM" ? holder : null;
      if (form && form.hasAttribute("data-autosubmit")) {
        var note = form.querySelector("[data-opening]");
        if (note) {
          note.removeAttribute("hidden");
        }
        form.submit();
      }
    });
    if (found && window.history && window.history.replaceState) {
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  // A link opened while this very page is already showing changes only the fragment (no load).
  window.addEventListener("hashchange", start);
})();
