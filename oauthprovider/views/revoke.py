"""POST /getKeys/revoke: an app gives back the key it received (RFC 7009)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from accounts.audit import RequestContext
from oauthprovider import protocol
from oauthprovider.http import form_params, no_store, oauth_error_response, public_cors
from oauthprovider.protocol import OAuthError
from oauthprovider.services import key_return


def _client_grant_id(raw: str) -> str:
    """The identifier grants record for this client_id (hostname or metadata URL)."""
    if protocol.is_metadata_document_url(raw):
        return raw
    return protocol.validate_client_id(raw, allow_loopback=settings.OAUTH_ALLOW_LOOPBACK_CLIENTS).host


@public_cors(methods=["POST"])
def revoke(request: HttpRequest) -> HttpResponse:
    try:
        params = form_params(request)
        token = protocol.single_param(params, "token", max_length=protocol.MAX_CODE)
        protocol.single_param(params, "token_type_hint", max_length=protocol.MAX_SHORT)
        client_id = protocol.single_param(params, "client_id", max_length=protocol.MAX_METADATA_URL)
        if token is None:
            raise OAuthError("invalid_request", "The token parameter is missing.")
        # RFC 7009 section 2.1: public clients identify themselves by client_id. Without
        # one, a key created for an app still names that app (services.key_return).
        grant_id = _client_grant_id(client_id) if client_id is not None else None
    except OAuthError as exc:
        return oauth_error_response(OAuthError(exc.error, exc.description))
    key_return(raw_key=token, client_grant_id=grant_id, context=RequestContext.from_request(request))
    # Section 2.2: 200 whether or not the token was valid, so nothing is learnt.
    return no_store(HttpResponse(status=200))
