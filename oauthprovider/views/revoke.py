"""POST /getKeys/revoke: an app gives back the key it received (RFC 7009)."""

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters

from accounts.audit import RequestContext
from accounts.clients import is_document_url
from oauthprovider import protocol
from oauthprovider.http import allow_methods, form_params, no_store, oauth_error_response, public_cors
from oauthprovider.protocol import OAuthError
from oauthprovider.services import key_return


def _recorded_forms(raw: str) -> list[str]:
    """What grants may record for this client_id: a metadata document URL; a website's
    hostname or an app's own name (without a redirect, either could be meant)."""
    if is_document_url(raw):
        return [raw]
    forms = []
    for parse in (protocol.validate_client_id, protocol.validate_self_name):
        try:
            forms.append(parse(raw, allow_loopback=True).recorded)  # giving a key back is always allowed
        except OAuthError:
            pass
    if not forms:
        raise OAuthError("invalid_request", "The client_id is neither a hostname nor an app's name.")
    return list(dict.fromkeys(forms))


@csrf_exempt  # no cookie is read here, so there is nothing to forge
@public_cors(methods=["POST"])
@allow_methods("POST")
@sensitive_post_parameters("token", "client_secret")
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
        clients = _recorded_forms(client_id) if client_id is not None else None
    except OAuthError as exc:
        return oauth_error_response(exc)
    key_return(raw_key=token, clients=clients, context=RequestContext.from_request(request))
    # Section 2.2: 200 whether or not the token was valid, so nothing is learnt.
    return no_store(HttpResponse(status=200))
