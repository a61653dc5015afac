// Security keys (WebAuthn) on the two-factor pages: add a key in the settings, use one at
// login. The server hands out the options as JSON and checks the answer (users/securitykeys.py);
// this only passes them between it and the browser's authenticator.
"use strict";
(function () {
  const box = document.querySelector(".security-key");
  if (!box) return;
  const status = box.querySelector(".key-status");
  const button = box.querySelector("[data-key-action]");
  const say = (text) => { status.textContent = text; };

  const supported = window.PublicKeyCredential &&
    typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function" &&
    typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function";
  if (!supported) {
    button.disabled = true;
    say("This browser cannot use security keys here: use a code instead.");
    return;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": box.dataset.csrf },
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await response.json(); } catch (_) { /* not JSON: say the status */ }
    if (!response.ok) throw new Error(data.error || `The server answered ${response.status}.`);
    return data;
  }

  async function register() {
    const options = await post(box.dataset.options);
    const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(options);
    const credential = await navigator.credentials.create({ publicKey });
    const name = (document.getElementById("key-name") || {}).value || "";
    return post(box.dataset.finish, { name, credential: credential.toJSON() });
  }

  async function logIn() {
    const options = await post(box.dataset.options);
    const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options);
    const credential = await navigator.credentials.get({ publicKey });
    const remember = document.getElementById("remember");
    return post(box.dataset.finish, {
      credential: credential.toJSON(),
      remember: Boolean(remember && remember.checked),
    });
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    say("Waiting for your security key…");
    try {
      const done = await (button.dataset.keyAction === "register" ? register() : logIn());
      window.location.assign(done.next);
    } catch (error) {
      say(error && error.name === "NotAllowedError"
        ? "The security key was not used (cancelled, or it timed out)."
        : (error && error.message) || "The security key could not be used.");
      button.disabled = false;
    }
  });
})();
