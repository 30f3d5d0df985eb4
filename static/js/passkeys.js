// Passkeys (WebAuthn) for forms marked data-passkey="register" | "signin" | "verify".
//
// A button marked data-passkey-start stays hidden unless the browser can do
// WebAuthn. Pressing it asks the server for the ceremony's options (POST to
// data-options-url, with the form's CSRF token), runs it in the browser,
// puts the answer (JSON) in the form's hidden "credential" field and sends
// the form as usual: the server checks it like any other form post. Every
// other way through these pages (codes, recovery codes, passwords) works
// without JavaScript.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) { return; }

  function toBytes(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) { base64 += "="; }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }
  function toText(buffer) {
    var bytes = new Uint8Array(buffer), binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function descriptors(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: toBytes(c.id) }); });
  }

  function createOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.user = Object.assign({}, o.user, { id: toBytes(o.user.id) });
    o.excludeCredentials = descriptors(o.excludeCredentials);
    return { publicKey: o };
  }
  function getOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.allowCredentials = descriptors(o.allowCredentials);
    return { publicKey: o };
  }
  // A credential as JSON, its ceremony's own `response` fields given.
  function asJSON(credential, response) {
    return {
      id: credential.id, rawId: toText(credential.rawId), type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || undefined,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: response
    };
  }
  function created(credential) {
    var r = credential.response;
    return asJSON(credential, {
      clientDataJSON: toText(r.clientDataJSON), attestationObject: toText(r.attestationObject),
      transports: r.getTransports ? r.getTransports() : []
    });
  }
  function asserted(credential) {
    var r = credential.response;
    return asJSON(credential, {
      clientDataJSON: toText(r.clientDataJSON), authenticatorData: toText(r.authenticatorData),
      signature: toText(r.signature), userHandle: r.userHandle ? toText(r.userHandle) : null
    });
  }

  function say(form, text) {
    var out = form.querySelector(".passkey-status");
    if (out) { out.textContent = text; }
  }

  function start(form, button) {
    var purpose = form.getAttribute("data-passkey");
    if (purpose === "register") {
      var name = form.querySelector("input[name=name]");
      if (name && !name.value.trim()) { say(form, "Give the passkey a name first."); name.focus(); return; }
    }
    var body = new FormData();
    body.append("purpose", purpose);
    body.append("csrfmiddlewaretoken", form.querySelector("input[name=csrfmiddlewaretoken]").value);
    button.disabled = true;
    say(form, "Waiting for your passkey…");
    fetch(form.getAttribute("data-options-url"), { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error("options"); }
        return response.json();
      })
      .then(function (options) {
        return purpose === "register"
          ? navigator.credentials.create(createOptions(options)).then(created)
          : navigator.credentials.get(getOptions(options)).then(asserted);
      })
      .then(function (answer) {
        form.querySelector("input[name=credential]").value = JSON.stringify(answer);
        say(form, "Checking…");
        form.submit();
      })
      .catch(function (error) {
        button.disabled = false;
        say(form, error && error.name === "NotAllowedError"
          ? "The passkey was not used (cancelled, or timed out). Try again."
          : "Your passkey could not be used here. Try again, or use another way.");
      });
  }

  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    form.querySelectorAll("[data-passkey-nojs]").forEach(function (note) { note.hidden = true; });
    form.querySelectorAll("[data-passkey-start]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", function (event) {
        event.preventDefault();
        start(form, button);
      });
    });
  });
})();
