/* Helpline console: live queue, my cases and transcript over server-sent events.
   Same origin only; builds the DOM with textContent (never innerHTML). The pages work
   without this file: it only saves reloading. */
(function () {
  "use strict";

  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { if (child) { node.appendChild(child); } });
    return node;
  }

  function cell(text) { return el("td", { text: text }); }

  function caseLink(c) {
    return el("th", { scope: "row" }, [el("a", { href: c.url, text: "Case " + c.number })]);
  }

  function badge(c) {
    return el("td", {}, [el("span", { "class": "badge level-" + c.level, text: c.level_short })]);
  }

  function needs(c) { return c.needs.length ? c.needs.join(", ") : "None named"; }

  function takeForm(c) {
    var button = el("button", { type: "submit", text: "Take" },
                    [el("span", { "class": "visually-hidden", text: " case " + c.number })]);
    return el("form", { method: "post", action: "/cases/" + c.number + "/take" },
              [el("input", { type: "hidden", name: "csrf", value: csrf }), button]);
  }

  function fill(body, rows, empty, columns) {
    var focused = document.activeElement;
    var focusedRow = focused && body.contains(focused) ? focused.closest("tr") : null;
    var focusNumber = focusedRow ? focusedRow.getAttribute("data-number") : null;
    var focusTag = focused ? focused.tagName : null;
    while (body.firstChild) { body.removeChild(body.firstChild); }
    if (!rows.length) {
      body.appendChild(el("tr", { "class": "empty" }, [el("td", { colspan: String(columns), text: empty })]));
    }
    rows.forEach(function (row) { body.appendChild(row); });
    if (focusNumber) {
      var again = body.querySelector('tr[data-number="' + focusNumber + '"] ' + focusTag.toLowerCase());
      if (again) { again.focus(); }
    }
  }

  // The tab's title counts who is waiting, so a caseworker working in another tab or window
  // sees a new case arrive: "(2 waiting, 1 emergency) Queue - Helpline console".
  var baseTitle = document.title.replace(/^\([^)]*\) /, "");  // the server's count comes off
  function showTitle(state) {
    var waiting = state.queue.length;
    var emergencies = state.queue.filter(function (c) { return c.level === "emergency"; }).length;
    var title = waiting ? "(" + waiting + " waiting" +
      (emergencies ? ", " + emergencies + " emergency" : "") + ") " + baseTitle : baseTitle;
    if (document.title !== title) { document.title = title; }
  }

  function showQueue(state) {
    showTitle(state);
    var queueBody = document.getElementById("queue-body");
    var mineBody = document.getElementById("mine-body");
    if (queueBody) {
      fill(queueBody, state.queue.map(function (c) {
        return el("tr", { "class": "level-" + c.level, "data-number": String(c.number) }, [
          caseLink(c), badge(c), cell(needs(c)), cell(c.area || "Not given"),
          cell(c.language_name), cell(c.channel), cell(c.waited), el("td", {}, [takeForm(c)])]);
      }), "No one is waiting.", 8);
      var count = document.getElementById("queue-count");
      var words = state.queue.length + " waiting";
      if (count && count.textContent !== words) { count.textContent = words; }
    }
    if (mineBody) {
      fill(mineBody, state.mine.map(function (c) {
        return el("tr", { "class": "level-" + c.level, "data-number": String(c.number) }, [
          caseLink(c), badge(c), cell(needs(c)), cell(c.area || "Not given"),
          cell(c.language_name), cell(c.taken_for || ""), cell(c.caseworker || "")]);
      }), "No active cases.", 7);
    }
  }

  function showCase(state, transcript) {
    var live = document.getElementById("case-live");
    var shown = document.getElementById("case-status");
    if (!state.case) {
      if (live) { live.hidden = false; live.textContent = "This case is no longer yours or no longer exists."; }
      return;
    }
    if (shown && live && state.case.status_text !== shown.textContent) {
      live.hidden = false;
      // closed_reason: the server's words when the person (quick exit, "forget me") or the
      // assistant (a long silence) ended it, read from the audit log; never a guess.
      live.textContent = "This case is now " + state.case.status_text.toLowerCase() + "." +
        (state.case.closed_reason ? " " + state.case.closed_reason : "") +
        " Reload the page to see it.";
    }
    if (transcript && state.case.closed_reason) {
      // The messages are deleted: they leave the screen too.
      while (transcript.firstChild) { transcript.removeChild(transcript.firstChild); }
      transcript.appendChild(el("li", { "class": "empty", text: state.case.closed_reason }));
      return;
    }
    if (!transcript || !state.transcript) { return; }
    var atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
    while (transcript.firstChild) { transcript.removeChild(transcript.firstChild); }
    if (!state.transcript.length) {
      transcript.appendChild(el("li", { "class": "empty", text: "No message yet." }));
    }
    state.transcript.forEach(function (line) {
      transcript.appendChild(el("li", { "class": "from-" + line.author }, [
        el("span", { "class": "who", text: line.who }), document.createTextNode(" "),
        el("span", { "class": "at", text: line.at || "" }),
        el("p", { dir: "auto", text: line.text })]));
    });
    if (atBottom) { transcript.scrollTop = transcript.scrollHeight; }
  }

  function listen() {
    var transcript = document.getElementById("transcript");
    var onCase = document.getElementById("case-status");
    if (!document.getElementById("queue-body") && !onCase) { return; }
    if (!window.EventSource) { return; }
    var number = onCase ? window.location.pathname.split("/").pop() : null;
    var source = new EventSource("/events" + (number ? "?case=" + encodeURIComponent(number) : ""));
    source.addEventListener("state", function (event) {
      var state = JSON.parse(event.data);
      showQueue(state);
      if (onCase) { showCase(state, transcript); }
    });
    source.addEventListener("signed-out", function () {
      source.close();
      window.location.assign("/sign-in");
    });
    if (transcript) { transcript.scrollTop = transcript.scrollHeight; }
  }

  function wire() {
    Array.prototype.forEach.call(document.querySelectorAll("button.copy"), function (button) {
      button.addEventListener("click", function () {
        var box = document.getElementById("reply-text");
        if (!box) { return; }
        box.value = button.getAttribute("data-text");
        box.focus();
      });
    });
    Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }

  wire();
  listen();
}());
