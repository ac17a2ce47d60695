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

  // Results as you type: the search form's fields are sent (debounced) with
  // X-Live-Search, the server answers with the results fragment only, and the address bar
  // follows so the page can be shared or reloaded. A slower, older answer never replaces a
  // newer one.
  function initLiveSearch() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-live-search]"), function (form) {
      var target = document.querySelector(form.getAttribute("data-live-search"));
      if (!target || !window.fetch) return;
      var timer = null;
      var controller = null;
      var latest = 0;
      function run() {
        var params = new URLSearchParams(new FormData(form));
        Array.from(params.keys()).forEach(function (key) {
          if (!params.get(key)) params.delete(key);
        });
        var url = (form.getAttribute("action") || window.location.pathname) + (params.toString() ? "?" + params : "");
        if (controller) controller.abort();
        controller = window.AbortController ? new AbortController() : null;
        var ticket = ++latest;
        target.setAttribute("aria-busy", "true");
        fetch(url, {
          headers: { "X-Live-Search": "1" },
          credentials: "same-origin",
          signal: controller ? controller.signal : undefined
        }).then(function (response) {
          return response.text().then(function (html) { return { ok: response.ok, html: html }; });
        }).then(function (answer) {
          if (ticket !== latest) return;
          target.innerHTML = answer.html;
          target.removeAttribute("aria-busy");
          if (answer.ok) window.history.replaceState(null, "", url);
        }).catch(function (error) {
          if (error && error.name === "AbortError") return;
          target.removeAttribute("aria-busy");
        });
      }
      function schedule() {
        clearTimeout(timer);
        timer = setTimeout(run, 250);
      }
      form.addEventListener("input", function (event) {
        if (event.target.name === "q") schedule();
      });
      form.addEventListener("change", function (event) {
        if (event.target.name === "sort") run();
      });
    });
  }

  // Autocomplete under a search box: names and titles from /v1/models/suggest, with the
  // arrow keys to move, Enter to open, Escape to close.
  function initSuggestions() {
    Array.prototype.forEach.call(document.querySelectorAll("input[data-suggest]"), function (input) {
      if (!window.fetch) return;
      var list = document.createElement("ul");
      list.className = "suggestions";
      list.id = input.id + "-suggestions";
      list.setAttribute("role", "listbox");
      list.hidden = true;
      input.setAttribute("role", "combobox");
      input.setAttribute("aria-autocomplete", "list");
      input.setAttribute("aria-expanded", "false");
      input.setAttribute("aria-controls", list.id);
      input.parentNode.appendChild(list);
      var timer = null;
      var latest = 0;
      var active = -1;
      function close() {
        list.hidden = true;
        active = -1;
        input.setAttribute("aria-expanded", "false");
        input.removeAttribute("aria-activedescendant");
      }
      function mark(index) {
        var items = list.querySelectorAll("li");
        active = (index + items.length) % items.length;
        Array.prototype.forEach.call(items, function (item, i) {
          item.setAttribute("aria-selected", i === active ? "true" : "false");
        });
        input.setAttribute("aria-activedescendant", items[active].id);
      }
      function show(suggestions) {
        list.textContent = "";
        suggestions.forEach(function (s, i) {
          var item = document.createElement("li");
          item.id = list.id + "-" + i;
          item.setAttribute("role", "option");
          var link = document.createElement("a");
          link.href = s.url;
          var title = document.createElement("span");
          title.className = "suggestion-title";
          title.textContent = s.title || s.name;
          var slug = document.createElement("span");
          slug.className = "suggestion-slug";
          slug.textContent = s.owner + "/" + s.name;
          link.appendChild(title);
          link.appendChild(slug);
          item.appendChild(link);
          list.appendChild(item);
        });
        list.hidden = suggestions.length === 0;
        input.setAttribute("aria-expanded", suggestions.length ? "true" : "false");
        active = -1;
      }
      input.addEventListener("input", function () {
        clearTimeout(timer);
        var text = input.value.trim();
        if (text.length < 2) { close(); return; }
        timer = setTimeout(function () {
          var ticket = ++latest;
          fetch("/v1/models/suggest?q=" + encodeURIComponent(text), { credentials: "same-origin" })
            .then(function (response) { return response.ok ? response.json() : { suggestions: [] }; })
            .then(function (body) { if (ticket === latest) show(body.suggestions || []); })
            .catch(function () { close(); });
        }, 150);
      });
      input.addEventListener("keydown", function (event) {
        if (list.hidden) return;
        if (event.key === "ArrowDown" || event.key === "ArrowUp") {
          event.preventDefault();
          mark(active + (event.key === "ArrowDown" ? 1 : -1));
        } else if (event.key === "Enter" && active >= 0) {
          event.preventDefault();
          window.location.href = list.querySelectorAll("li a")[active].href;
        } else if (event.key === "Escape") {
          close();
        }
      });
      input.addEventListener("blur", function () { setTimeout(close, 150); });
    });
  }

  function ready() {
    addCodeCopyButtons();
    initTabsets();
    initScrollSpy();
    initLiveSearch();
    initSuggestions();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
