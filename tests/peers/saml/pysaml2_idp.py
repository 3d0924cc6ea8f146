"""A second real SAML IdP for the negative tests: PyPI pysaml2 (it signs through the
xmlsec1 CLI). Reads one JSON request on stdin, prints the base64 SAMLResponse.

Request keys: entity_id, key_file, cert_file, sp_entity_id, acs_url, name_id,
attributes ({name: [values]}), sign_response, sign_assertion, sign_alg, digest_alg
(URIs; SHA-256 unless given: pysaml2's own default is SHA-1), in_response_to.
"""
import base64
import json
import sys
import tempfile

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.saml import NAMEID_FORMAT_UNSPECIFIED, NAME_FORMAT_URI, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

SP_METADATA = """<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:NameIDFormat>{nameid}</md:NameIDFormat>
    <md:AssertionConsumerService Binding="{binding}" Location="{acs}" index="0"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"""


def main():
    req = json.load(sys.stdin)
    sp_md = SP_METADATA.format(
        entity=req["sp_entity_id"], acs=req["acs_url"], nameid=NAMEID_FORMAT_UNSPECIFIED,
        binding=BINDING_HTTP_POST,
    )
    with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as md:
        md.write(sp_md)
    conf = {
        "entityid": req["entity_id"],
        "key_file": req["key_file"],
        "cert_file": req["cert_file"],
        "xmlsec_binary": "/usr/bin/xmlsec1",
        "metadata": {"local": [md.name]},
        "allow_unknown_attributes": True,
        "service": {
            "idp": {
                "endpoints": {
                    "single_sign_on_service": [(req["entity_id"] + "/sso", BINDING_HTTP_REDIRECT)],
                },
                "policy": {
                    "default": {
                        "lifetime": {"minutes": 5},
                        "attribute_restrictions": None,
                        "name_form": NAME_FORMAT_URI,
                    },
                },
                "name_id_format": [NAMEID_FORMAT_UNSPECIFIED],
            },
        },
    }
    cfg = IdPConfig()
    cfg.load(conf)
    idp = Server(config=cfg)
    response = idp.create_authn_response(
        identity=req.get("attributes", {}),
        in_response_to=req.get("in_response_to"),
        destination=req["acs_url"],
        sp_entity_id=req["sp_entity_id"],
        name_id=NameID(format=NAMEID_FORMAT_UNSPECIFIED, text=req["name_id"]),
        authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
        userid=req["name_id"],
        sign_response=bool(req.get("sign_response")),
        sign_assertion=bool(req.get("sign_assertion")),
        sign_alg=req.get("sign_alg") or SIG_RSA_SHA256,
        digest_alg=req.get("digest_alg") or DIGEST_SHA256,
    )
    sys.stdout.write(base64.b64encode(str(response).encode("utf-8")).decode("ascii"))


if __name__ == "__main__":
    main()
