"""Digest client against RFC 7616 §3.9.1's vectors, and challenge parsing as trunks send it."""

from __future__ import annotations

from bridge.sip.digest import Challenge, authorization, parse_challenges, response, strongest

VECTOR = dict(username="Mufasa", password="Circle of Life", method="GET", uri="/dir/index.html",
              cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", nc=1)
NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"


def test_rfc7616_md5_and_sha256_vectors() -> None:
    md5 = Challenge("http-auth@example.org", NONCE, "MD5", ("auth",), "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
    assert response(md5, **VECTOR) == "8ca523f5e9506fed4657c9700eebdbec"   # type: ignore[arg-type]
    sha = Challenge("http-auth@example.org", NONCE, "SHA-256", ("auth",))
    assert response(sha, **VECTOR) == "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"  # type: ignore[arg-type]


def test_strongest_challenge_wins_and_header_is_complete() -> None:
    values = [
        'Digest realm="trunk", nonce="n1", algorithm=MD5, qop="auth"',
        'Digest realm="trunk", nonce="n2", algorithm=SHA-256, qop="auth,auth-int", opaque="o"',
        'Basic realm="x"',
        'Digest realm="trunk", nonce="n3", algorithm=AKAv1-MD5',
    ]
    chosen = strongest(parse_challenges(values))
    assert chosen is not None and chosen.algorithm == "SHA-256" and chosen.opaque == "o"
    header = authorization(chosen, username="u", password="p", method="INVITE", uri="sip:123@trunk",
                           cnonce="abc", nc=2)
    assert header.startswith('Digest username="u", realm="trunk", nonce="n2", uri="sip:123@trunk"')
    assert "nc=00000002" in header and "qop=auth" in header and 'opaque="o"' in header


def test_no_qop_and_sess_variants() -> None:
    (plain,) = parse_challenges(['Digest realm="r", nonce="n", stale=TRUE'])
    assert plain.stale and plain.qop == ()
    header = authorization(plain, username="u", password="p", method="INVITE", uri="sip:1@r", cnonce="c", nc=1)
    assert "qop" not in header and "cnonce" not in header
    sess = Challenge("r", "n", "SHA-512-256-sess", ("auth",))
    assert len(response(sess, username="u", password="p", method="INVITE", uri="sip:1@r", cnonce="c", nc=1)) == 64
    assert parse_challenges(['Digest realm="r", nonce="n", qop="auth-int"']) == []   # we cannot answer it
