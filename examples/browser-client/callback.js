// Step 2 and 3 of the flow: check the answer, exchange the code for the key,
// and use the key on the API. Written the way the provider's Quick Start
// writes it; see README.md.

const statusLine = document.getElementById("status");

// The page's outcome, for people (the text) and for the end-to-end tests
// (data-outcome on <body>: "connected", "denied" or "error").
function finish(outcome, message) {
  document.body.dataset.outcome = outcome;
  statusLine.textContent = message;
}

function fail(message) {
  const error = document.getElementById("error");
  error.textContent = message;
  error.hidden = false;
  finish("error", "Something went wrong.");
}

async function handleCallback() {
  // On your callback page
  const urlParams = new URLSearchParams(window.location.search);
  const code = urlParams.get("code");
  const codeVerifier = localStorage.getItem("code_verifier");
  const expectedState = localStorage.getItem("state");
  const provider = localStorage.getItem("provider");
  // One attempt per authorization: the verifier and state are not reused.
  localStorage.removeItem("code_verifier");
  localStorage.removeItem("state");
  // Keep the one-time code out of the address bar and the browser history.
  window.history.replaceState(null, "", window.location.pathname);

  if (!codeVerifier || !expectedState || !provider) {
    return fail("This callback does not belong to an authorization started here. Start again from the app.");
  }
  // The state ties this answer to the request this browser made (CSRF).
  if (urlParams.get("state") !== expectedState) {
    return fail("The state does not match the request this app made. Start again from the app.");
  }
  // RFC 9207: the answer must come from the provider we sent the user to
  // (the issuer is the provider's base URL).
  if (urlParams.get("iss") !== provider) {
    return fail(`The answer did not come from ${provider} (iss is ${urlParams.get("iss")}).`);
  }
  const error = urlParams.get("error");
  if (error === "access_denied") {
    return finish("denied", "You denied the request (error=access_denied): the app got no key.");
  }
  if (error) {
    return fail(`The provider answered ${error}: ${urlParams.get("error_description") || ""}`);
  }
  if (!code) {
    return fail("The answer carries neither a code nor an error.");
  }

  // The app's own identity, exactly as sent in the authorization request.
  const clientId = window.location.hostname;
  const redirectUri = new URL("callback.html", window.location.href).href;

  statusLine.textContent = "Exchanging the code for your key…";
  const response = await fetch(provider + "/getKeys/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: code,
      client_id: clientId,
      redirect_uri: redirectUri,
      code_verifier: codeVerifier,
    }),
  });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    return fail(`The token endpoint refused the code: ${body.error || response.status} ${body.error_description || ""}`);
  }

  const { access_token } = await response.json();
  // access_token is the user's API key: a real app keeps it as a secret
  // (on its server, or at least out of the page). This example keeps it in
  // memory only and never displays it.

  // Use the API key
  statusLine.textContent = "Calling /v1/me with the key…";
  const me = await fetch(provider + "/v1/me", {
    headers: { "x-api-key": access_token },
  });
  if (!me.ok) {
    return fail(`GET /v1/me refused the key (HTTP ${me.status}).`);
  }
  const { user, key } = await me.json();

  document.getElementById("user-name").textContent = user.name || user.username;
  document.getElementById("username").textContent = user.username;
  document.getElementById("key-name").textContent = key.name;
  document.getElementById("key-prefix").textContent = key.prefix;
  document.getElementById("result").hidden = false;
  finish("connected", "Done: the app got a key and used it on the API.");
}

handleCallback().catch((error) => fail(`Could not reach the provider: ${error}`));
