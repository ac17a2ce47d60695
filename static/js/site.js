/* Modelplace — small progressive enhancements. No dependencies; every page works without it.
 *
 *  - [data-copy-target="#id"] copies that element's text; [data-copy-text="..."] copies the value
 *  - every pre.code gets a Copy button
 *  - alerts: dismiss buttons
 *  - <details class="menu">: close on outside click, on Escape, and when another one opens
 *  - [data-confirm="message"] on a form or a button/link asks before going on
 *  - [data-tabset]: client-side tabs (buttons [data-tab] / panels [data-tab-panel])
 *  - "/" focuses the header search; the docs table of contents follows the scroll
 */
(function () {
  "use strict";

  document.documentElement.classList.add("js");

  /* Clipboard ------------------------------------------------------------------------- */

  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.top = "-1000px";
    area.style.opacity = "0";
    document.body.appendChild(area);
    var selection = document.getSelection();
    var previous = selection && selection.rangeCount ? selection.getRangeAt(0) : null;
    area.select();
    area.setSelectionRange(0, text.length);
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    document.body.removeChild(area);
    if (previous && selection) {
      selection.removeAllRanges();
      selection.addRange(previous);
    }
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  function copyText(text) {
    // navigator.clipboard exists only in secure contexts (https, localhost); 127.0.0.1 over
    // plain http may still lack it, hence the fallback.
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return fallbackCopy(text);
      });
    }
    return fallbackCopy(text);
  }

  function flash(button, label, className) {
    if (!button.dataset.label) button.dataset.label = button.innerHTML;
    clearTimeout(button._copyTimer);
    button.textContent = label;
    if (className) button.classList.add(className);
    button._copyTimer = setTimeout(function () {
      button.innerHTML = button.dataset.label;
      button.classList.remove("copied", "copy-failed");
    }, 1500);
  }

  function selectContents(target) {
    // Last resort: select the text so the user can copy it with the keyboard.
    if (!target) return;
    if (typeof target.select === "function") {
      target.select();
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(target);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copyFrom(button) {
    var text = button.getAttribute("data-copy-text");
    var target = null;
    if (text === null) {
      var selector = button.getAttribute("data-copy-target");
      target = selector ? document.querySelector(selector) : null;
      if (!target) return;
      text = /^(INPUT|TEXTAREA)$/.test(target.tagName) ? target.value : target.textContent;
    }
    text = text.replace(/\s+$/, "");
    copyText(text).then(
      function () { flash(button, "Copied", "copied"); },
      function () {
        selectContents(target);
        flash(button, /Mac|iPhone|iPad/.test(navigator.platform) ? "Press \u2318C" : "Press Ctrl+C", "copy-failed");
      }
    );
  }

  function addCodeCopyButtons() {
    var blocks = document.querySelectorAll("pre.code:not([data-no-copy])");
    Array.prototype.forEach.call(blocks, function (pre, index) {
      if (pre.parentNode.classList.contains("code-block")) return;
      var wrapper = document.createElement("div");
      wrapper.className = "code-block";
      pre.parentNode.insertBefore(wrapper, pre);
      wrapper.appendChild(pre);
      if (!pre.id) pre.id = "code-" + (index + 1);
      var button = document.createElement("button");
      button.type = "button";
      button.className = "btn btn-sm code-copy";
      button.textContent = "Copy";
      button.setAttribute("aria-label", "Copy code to clipboard");
      button.setAttribute("data-copy-target", "#" + pre.id);
      wrapper.appendChild(button);
    });
  }

  /* Alerts ---------------------------------------------------------------------------- */

  function dismiss(alert) {
    alert.classList.add("is-leaving");
    setTimeout(function () {
      if (alert.parentNode) alert.parentNode.removeChild(alert);
    }, 200);
  }

  /* Menus ----------------------------------------------------------------------------- */

  function openMenus() {
    return document.querySelectorAll("details.menu[open]");
  }

  function closeMenus(except) {
    Array.prototype.forEach.call(openMenus(), function (menu) {
      if (menu !== except && !menu.contains(except)) menu.removeAttribute("open");
    });
  }

  /* Tabs ------------------------------------------------------------------------------ */

  function selectTab(tabset, name, focus) {
    var tabs = tabset.querySelectorAll("[data-tab]");
    var panels = tabset.querySelectorAll("[data-tab-panel]");
    Array.prototype.forEach.call(tabs, function (tab) {
      var on = tab.getAttribute("data-tab") === name;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.setAttribute("tabindex", on ? "0" : "-1");
      tab.classList.toggle("active", on);
      if (on && focus) tab.focus();
    });
    Array.prototype.forEach.call(panels, function (panel) {
      panel.hidden = panel.getAttribute("data-tab-panel") !== name;
    });
  }

  function initTabsets() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-tabset]"), function (tabset) {
      var tabs = tabset.querySelectorAll("[data-tab]");
      if (!tabs.length) return;
      var list = tabs[0].parentNode.closest(".tabs") || tabs[0].parentNode;
      list.setAttribute("role", "tablist");
      Array.prototype.forEach.call(tabs, function (tab) {
        tab.setAttribute("role", "tab");
        var panel = tabset.querySelector('[data-tab-panel="' + tab.getAttribute("data-tab") + '"]');
        if (panel) {
          if (!panel.id) panel.id = "panel-" + tab.getAttribute("data-tab") + "-" + Math.random().toString(36).slice(2, 7);
          panel.setAttribute("role", "tabpanel");
          tab.setAttribute("aria-controls", panel.id);
        }
      });
      var initial = tabset.querySelector("[data-tab].active") || tabs[0];
      selectTab(tabset, initial.getAttribute("data-tab"), false);
    });
  }

  /* Docs table of contents ------------------------------------------------------------ */

  function initScrollSpy() {
    var toc = document.querySelector("[data-scrollspy]");
    if (!toc) return;
    // On narrow screens the table of contents starts collapsed and closes after a choice.
    var narrow = window.matchMedia && window.matchMedia("(max-width: 900px)");
    if (toc.tagName === "DETAILS" && narrow && narrow.matches) toc.removeAttribute("open");
    toc.addEventListener("click", function (event) {
      if (event.target.closest && event.target.closest("a") && narrow && narrow.matches) {
        toc.removeAttribute("open");
      }
    });
    if (!("IntersectionObserver" in window)) return;
    var links = {};
    Array.prototype.forEach.call(toc.querySelectorAll('a[href^="#"]'), function (link) {
      links[link.getAttribute("href").slice(1)] = link;
    });
    var sections = Object.keys(links)
      .map(function (id) { return document.getElementById(id); })
      .filter(Boolean);
    var visible = {};
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) { visible[entry.target.id] = entry.isIntersecting; });
      var current = null;
      for (var i = 0; i < sections.length; i++) {
        if (visible[sections[i].id]) { current = sections[i].id; break; }
      }
      if (!current) return;
      Object.keys(links).forEach(function (id) { links[id].classList.toggle("active", id === current); });
    }, { rootMargin: "-70px 0px -65% 0px" });
    sections.forEach(function (section) { observer.observe(section); });
  }

  /* Wiring ---------------------------------------------------------------------------- */

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;

    var copyButton = target.closest("[data-copy-target], [data-copy-text]");
    if (copyButton) {
      event.preventDefault();
      copyFrom(copyButton);
      return;
    }

    var dismissButton = target.closest("[data-dismiss]");
    if (dismissButton) {
      var alert = dismissButton.closest(".alert, [data-dismissible]");
      if (alert) dismiss(alert);
      return;
    }

    var tab = target.closest("[data-tabset] [data-tab]");
    if (tab) {
      event.preventDefault();
      selectTab(tab.closest("[data-tabset]"), tab.getAttribute("data-tab"), false);
      return;
    }

    var confirmable = target.closest("a[data-confirm], button[data-confirm], input[type=submit][data-confirm]");
    if (confirmable && !window.confirm(confirmable.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
      return;
    }

    // A click outside an open menu closes it; a click on a link inside closes it too.
    var menu = target.closest("details.menu");
    closeMenus(menu);
    if (menu && target.closest(".menu-panel a")) menu.removeAttribute("open");
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var submitter = event.submitter;
    // A button with its own data-confirm has already asked in the click handler.
    if (submitter && submitter.hasAttribute("data-confirm")) return;
    var message = form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);

  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (details.matches && details.matches("details.menu") && details.open) closeMenus(details);
  }, true);

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      var open = openMenus();
      Array.prototype.forEach.call(open, function (menu) {
        menu.removeAttribute("open");
        var summary = menu.querySelector("summary");
        if (summary && menu.contains(document.activeElement)) summary.focus();
      });
      return;
    }

    // Arrow keys move between tabs of a client-side tabset.
    var tab = event.target instanceof Element && event.target.closest("[data-tabset] [data-tab]");
    if (tab && (event.key === "ArrowRight" || event.key === "ArrowLeft")) {
      var tabset = tab.closest("[data-tabset]");
      var tabs = Array.prototype.slice.call(tabset.querySelectorAll("[data-tab]"));
      var next = tabs[(tabs.indexOf(tab) + (event.key === "ArrowRight" ? 1 : -1) + tabs.length) % tabs.length];
      selectTab(tabset, next.getAttribute("data-tab"), true);
      event.preventDefault();
      return;
    }

    // "/" focuses the search box, unless the user is typing somewhere.
    if (event.key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey) {
      var active = document.activeElement;
      var typing = active && (active.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName));
      if (typing) return;
      var search = document.querySelector("[data-search-shortcut]");
      if (search && search.offsetParent !== null) {
        event.preventDefault();
        search.focus();
        search.select();
      }
    }
  });

  function ready() {
    addCodeCopyButtons();
    initTabsets();
    initScrollSpy();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
