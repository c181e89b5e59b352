// KAMIYO MCP pages: pricing -> Stripe Checkout, success/claim -> reveal the token once.
// The token lives only in this page's memory and its text boxes: never in a URL, a cookie or storage.
"use strict";

(function () {
  const page = document.body.dataset.page;
  const support = document.body.dataset.support || "our support";
  const billingOn = document.body.dataset.billing !== "off";
  // A server-side failure is the operator's to read (in the API error and the log), not the buyer's.
  const unavailable = "This is not available right now. Please try again in a few minutes, or write to " +
    support + ".";

  function setStatus(element, text, isError) {
    element.textContent = text;
    element.classList.toggle("error", Boolean(isError));
  }

  async function postJSON(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { status: response.status, data: data };
  }

  function errorMessage(result, fallback) {
    if (result.status >= 500) { return unavailable.replace("This is", "Subscriptions are"); }
    const data = result.data;
    return (data && data.error && data.error.message) || fallback;
  }

  // ---- pricing --------------------------------------------------------------------------------

  function initPricing() {
    const form = document.getElementById("checkout-form");
    const email = document.getElementById("email");
    const status = document.getElementById("status");
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    form.querySelectorAll("button[data-tier]").forEach(function (button) {
      button.addEventListener("click", async function () {
        if (!email.checkValidity() || !email.value.trim()) {
          setStatus(status, "Enter a valid email address first.", true);
          email.focus();
          return;
        }
        const buttons = form.querySelectorAll("button[data-tier]");
        buttons.forEach(function (b) { b.disabled = true; });
        setStatus(status, "Opening Stripe Checkout…", false);
        const origin = window.location.origin;
        try {
          const overage = form.querySelector('input[data-overage="' + button.dataset.tier + '"]');
          const result = await postJSON("/api/billing/create-checkout-session", {
            tier: button.dataset.tier,
            user_email: email.value.trim(),
            success_url: origin + "/billing/success",
            cancel_url: origin + "/pricing",
            overage: Boolean(overage && overage.checked),
          });
          if (result.status === 200 && result.data && result.data.checkout_url) {
            window.location.assign(result.data.checkout_url);
            return;
          }
          setStatus(status, errorMessage(result, "Checkout could not be started; try again."), true);
        } catch (e) {
          setStatus(status, "The server could not be reached; try again.", true);
        }
        buttons.forEach(function (b) { b.disabled = false; });
      });
    });
  }

  // ---- reveal (success and claim pages) -------------------------------------------------------

  function forgetQuery() {
    // The claim secret leaves the address bar (and history) once it has been used.
    window.history.replaceState(null, "", window.location.pathname);
  }

  function showToken(data) {
    document.getElementById("token").value = data.token;
    document.getElementById("token-tier").textContent = data.tier;
    document.getElementById("token-expiry").textContent = String(data.expires_at).slice(0, 10);
    document.getElementById("config").value = JSON.stringify(data.claude_desktop_config, null, 2);
    document.getElementById("revealed").hidden = false;
    document.getElementById("token").focus();
  }

  function initCopyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", async function () {
        const field = document.getElementById(button.dataset.copy);
        const label = button.textContent;
        try {
          await navigator.clipboard.writeText(field.value);
        } catch (e) {
          field.select();
          document.execCommand("copy");
        }
        button.textContent = "Copied";
        window.setTimeout(function () { button.textContent = label; }, 2000);
      });
    });
  }

  function initReveal(claim) {
    const button = document.getElementById("reveal-button");
    const status = document.getElementById("reveal-status");
    initCopyButtons();
    if (!claim) {
      button.disabled = true;
      setStatus(status, "This link is incomplete. Use the link from your welcome email exactly as sent.", true);
      return;
    }
    let waits = 0;
    async function attempt() {
      let result;
      try {
        result = await postJSON("/api/mcp/token/claim", claim);
      } catch (e) {
        setStatus(status, "The server could not be reached; try again.", true);
        button.disabled = false;
        return;
      }
      if (result.status === 200) {
        forgetQuery();
        button.hidden = true;
        setStatus(status, "Here is your token. It will not be shown again.", false);
        showToken(result.data);
        return;
      }
      // Right after paying, Stripe's confirmation may still be on its way: wait for it a little.
      if (result.status === 404 && claim.session_id && waits < 10) {
        waits += 1;
        setStatus(status, "Waiting for Stripe to confirm the payment…", false);
        window.setTimeout(attempt, 2000);
        return;
      }
      if (result.status === 410 || result.status === 403) { forgetQuery(); }
      setStatus(status, result.status >= 500 ? unavailable : errorMessage(result, "The token could not be revealed."),
                true);
      button.disabled = result.status === 410 || result.status === 403;
    }
    button.addEventListener("click", function () {
      button.disabled = true;
      setStatus(status, "Revealing…", false);
      attempt();
    });
  }

  async function loadSummary(sessionId) {
    const text = document.getElementById("summary-text");
    if (!sessionId) {
      text.textContent = "No checkout was named in this link. Your welcome email has a link to get your token.";
      return;
    }
    try {
      const response = await fetch("/api/billing/checkout-session/" + encodeURIComponent(sessionId),
                                   { credentials: "omit", cache: "no-store" });
      const data = await response.json();
      if (!response.ok) {
        text.textContent = response.status >= 500 ? "Your subscription's details are not available right now."
          : errorMessage({ status: response.status, data: data }, "The checkout could not be looked up.");
        return;
      }
      const amount = typeof data.amount_total === "number" && data.currency
        ? new Intl.NumberFormat(undefined, { style: "currency", currency: data.currency.toUpperCase() })
            .format(data.amount_total / 100)
        : "";
      const tier = data.tier ? data.tier.charAt(0).toUpperCase() + data.tier.slice(1) : "KAMIYO MCP";
      text.textContent = tier + " plan" + (amount ? ", " + amount + " per month" : "") +
        (data.customer_email ? ", for " + data.customer_email : "") + ".";
    } catch (e) {
      text.textContent = "The checkout could not be looked up.";
    }
  }

  const params = new URLSearchParams(window.location.search);
  if (page === "pricing") {
    if (billingOn) { initPricing(); }
  } else if (page === "success" && !billingOn) {
    initCopyButtons();  // the page says why there is nothing to reveal here
  } else if (page === "success") {
    const sessionId = params.get("session_id");
    loadSummary(sessionId);
    initReveal(sessionId ? { session_id: sessionId } : null);
  } else if (page === "claim") {
    const code = params.get("code");
    initReveal(code ? { claim_code: code } : null);
  }
})();
