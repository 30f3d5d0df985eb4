// Step 1 of the flow: make a PKCE pair and send the browser to the provider.
// Written the way the provider's Quick Start writes it; see README.md.
import { DEFAULT_PROVIDER } from "./config.js";

// The provider: ?provider=... on this page, else config.js. A trailing slash
// is dropped: the provider's issuer is its base URL without one.
const provider = (new URLSearchParams(window.location.search).get("provider") || DEFAULT_PROVIDER).replace(/\/+$/, "");

// This app's identity: the client_id is its own hostname, and the callback
// page sits beside this one.
const clientId = window.location.hostname;
const redirectUri = new URL("callback.html", window.location.href).href;

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(
    /[+/=]/g,
    (m) => ({ "+": "-", "/": "_", "=": "" }[m])
  );
}

// Generate PKCE parameters (RFC 7636): 32 random bytes give a 43-character
// verifier; the challenge is BASE64URL(SHA256(verifier)).
function generatePKCE() {
  const codeVerifier = base64url(crypto.getRandomValues(new Uint8Array(32)));

  return crypto.subtle
    .digest("SHA-256", new TextEncoder().encode(codeVerifier))
    .then((hash) => ({
      codeVerifier,
      codeChallenge: base64url(new Uint8Array(hash)),
    }));
}

async function startAuthorization() {
  // Redirect user to authorization
  const { codeVerifier, codeChallenge } = await generatePKCE();
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  localStorage.setItem("code_verifier", codeVerifier);
  localStorage.setItem("state", state);
  // The callback page needs to know which provider this run talks to.
  localStorage.setItem("provider", provider);

  const authUrl = new URL(provider + "/getKeys/authorize");
  authUrl.searchParams.set("client_id", clientId);
  authUrl.searchParams.set("redirect_uri", redirectUri);
  authUrl.searchParams.set("response_type", "code");
  authUrl.searchParams.set("scope", "key:read");
  authUrl.searchParams.set("code_challenge", codeChallenge);
  authUrl.searchParams.set("code_challenge_method", "S256");
  authUrl.searchParams.set("state", state);

  window.location.href = authUrl.toString();
}

document.getElementById("client-origin").textContent = window.location.origin;
document.getElementById("client-id").textContent = clientId;
document.getElementById("provider").textContent = provider;
document.getElementById("redirect-uri").textContent = redirectUri;
if (new URL(provider).hostname === clientId) {
  const link = document.getElementById("localhost-link");
  const other = new URL(window.location.href);
  other.hostname = clientId === "localhost" ? "127.0.0.1" : "localhost";
  link.href = link.textContent = other.href;
  document.getElementById("same-host-warning").hidden = false;
}

const button = document.getElementById("connect");
button.addEventListener("click", () => {
  button.disabled = true;
  startAuthorization().catch((error) => {
    button.disabled = false;
    alert("Could not start the authorization: " + error);
  });
});
button.disabled = false;
