"""RFC 4475 SIP torture tests fed to SipEndpoint over UDP, and a hypothesis property: no message of
any shape makes the endpoint raise.

The messages are RFC 4475's, rebuilt from its text: CRLF line ends, bodies exactly as the RFC's
Content-Length values count them, mpart01's binary part as the RFC's <hex> block. Every invalid
request is refused (400, or the specific 4xx / 505) and every bad response dropped; none reaches
the dialog layer, and the endpoint still answers an OPTIONS with 200 afterwards. Where RFC 4475
lets an element choose, the choice is noted at the case.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.sip import (
    Flow, FramingError, IncomingCall, SipEndpoint, SipEvent, SipParseError, SipRequest, SipResponse,
    StreamFramer, parse_message,
)

# ---------------------------------------------------------------- 3.1.1 valid messages

# 3.1.1.1 A Short Tortuous INVITE (wsinv)
WSINV = (
    b"INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n"
    b"TO :\r\n"
    b" sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n"
    b"from   : \"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n"
    b"  ;\r\n"
    b"  tag = 98asjd8\r\n"
    b"MaX-fOrWaRdS: 0068\r\n"
    b"Call-ID: wsinv.ndaksdj@192.0.2.1\r\n"
    b"Content-Length   : 150\r\n"
    b"cseq: 0009\r\n"
    b"  INVITE\r\n"
    b"Via  : SIP  /   2.0\r\n"
    b" /UDP\r\n"
    b"    192.0.2.2;branch=390skdjuw\r\n"
    b"s :\r\n"
    b"NewFangledHeader:   newfangled value\r\n"
    b" continued newfangled value\r\n"
    b"UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Route:\r\n"
    b" <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\r\n"
    b"v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n"
    b"  branch  =   z9hG4bK9ikj8  ,\r\n"
    b" SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n"
    b" z9hG4bK30239\r\n"
    b"m:\"Quoted string \\\"\\\"\" <sip:jdrosen@example.com> ; newparam =\r\n"
    b"      newvalue ;\r\n"
    b"  secondparam ; q = 0.33\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.3\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.4\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.1.2 Wide Range of Valid Characters (intmeth)
INTMETH = (
    b"!interesting-Method0123456789_*+`.%indeed'~ sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,"
    b"/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~\r\n"
    b"To: \"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;"
    b";*@example.com>\r\n"
    b"From: token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"\xd1"
    b"\x80\xd0\xb0\xd0\xb1\xd0\xbe\xd1\x82\xd0\xb0\xd1\x8e\xd1\x89\xd0\xb8\xd0\xb9\";tag=_token~1'"
    b"+`*%!-.\r\n"
    b"Call-ID: intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{\r\n"
    b"CSeq: 139122385 !interesting-Method0123456789_*+`.%indeed'~\r\n"
    b"Max-Forwards: 255\r\n"
    b"extensionHeader-!.%*+_`'~:\xef\xbb\xbf\xe5\xa4\xa7\xe5\x81\x9c\xe9\x9b\xbb\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

# 3.1.1.3 Valid Use of the % Escaping Mechanism (esc01)
ESC01 = (
    b"INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0\r\n"
    b"To: sip:%75se%72@example.com\r\n"
    b"From: <sip:I%20have%20spaces@example.net>;tag=938\r\n"
    b"Max-Forwards: 87\r\n"
    b"i: esc01.239409asdfakjkn23onasd0-3234\r\n"
    b"CSeq: 234234 INVITE\r\n"
    b"Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw\r\n"
    b"C: application/sdp\r\n"
    b"Contact:\r\n"
    b"  <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>\r\n"
    b"Content-Length: 150\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.1.4 Escaped Nulls in URIs (escnull)
ESCNULL = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"To: sip:null-%00-null@example.com\r\n"
    b"From: sip:null-%00-null@example.com;tag=839923423\r\n"
    b"Max-Forwards: 70\r\n"
    b"Call-ID: escnull.39203ndfvkjdasfkq3w4otrq0adsfdfnavd\r\n"
    b"CSeq: 14398234 REGISTER\r\n"
    b"Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\r\n"
    b"Contact: <sip:%00@host5.example.com>\r\n"
    b"Contact: <sip:%00%00@host5.example.com>\r\n"
    b"L:0\r\n"
    b"\r\n"
)

# 3.1.1.5 Use of % When It Is Not an Escape (esc02)
ESC02 = (
    b"RE%47IST%45R sip:registrar.example.com SIP/2.0\r\n"
    b"To: \"%Z%45\" <sip:resource@example.com>\r\n"
    b"From: \"%Z%45\" <sip:resource@example.com>;tag=f232jadfj23\r\n"
    b"Call-ID: esc02.asdfnqwo34rq23i34jrjasdcnl23nrlknsdf\r\n"
    b"Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234\r\n"
    b"CSeq: 29344 RE%47IST%45R\r\n"
    b"Max-Forwards: 70\r\n"
    b"Contact: <sip:alias1@host1.example.com>\r\n"
    b"C%6Fntact: <sip:alias2@host2.example.com>\r\n"
    b"Contact: <sip:alias3@host3.example.com>\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# 3.1.1.6 Message with No LWS between Display Name and < (lwsdisp)
LWSDISP = (
    b"OPTIONS sip:user@example.com SIP/2.0\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: caller<sip:caller@example.com>;tag=323\r\n"
    b"Max-Forwards: 70\r\n"
    b"Call-ID: lwsdisp.1234abcd@funky.example.com\r\n"
    b"CSeq: 60 OPTIONS\r\n"
    b"Via: SIP/2.0/UDP funky.example.com;branch=z9hG4bKkdjuw\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# 3.1.1.7 Long Values in Header Fields (longreq)
LONGREQ = (
    b"INVITE sip:user@example.com SIP/2.0\r\n"
    b"To: \"I have a user name of extremeextremeextremeextremeextremeextremeextremeextremeextremee"
    b"xtreme proportion\"<sip:user@example.com:6000;unknownparam1=verylonglonglonglonglonglonglong"
    b"longlonglonglonglonglonglonglonglonglonglonglonglongvalue;longparamnamenamenamenamenamenamen"
    b"amenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamenamename=shortvalue;veryl"
    b"onglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongl"
    b"onglongParameterNameWithNoValue>\r\n"
    b"F: sip:amazinglylongcallernameamazinglylongcallernameamazinglylongcallernameamazinglylongcal"
    b"lernameamazinglylongcallername@example.net;tag=129829829829829829829829829829829829829829829"
    b"82982982982982982982982982982982982982982982982982982982982982982982982982982982982982982982"
    b"982982982982982424;unknownheaderparamnamenamenamenamenamenamenamenamenamenamenamenamenamenam"
    b"enamenamenamenamenamename=unknowheaderparamvaluevaluevaluevaluevaluevaluevaluevaluevaluevalu"
    b"evaluevaluevaluevaluevalue;unknownValuelessparamnameparamnameparamnameparamnameparamnamepara"
    b"mnameparamnameparamnameparamnameparamname\r\n"
    b"Call-ID: longreq.onereallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreallyreally"
    b"reallyreallyreallyreallyreallyreallyreallyreallylongcallid\r\n"
    b"CSeq: 3882340 INVITE\r\n"
    b"Unknown-LongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLongLong-Nam"
    b"e: unknown-longlonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglong-"
    b"value; unknown-longlonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongl"
    b"ong-parameter-name = unknown-longlonglonglonglonglonglonglonglonglonglonglonglonglonglonglon"
    b"glonglonglonglong-parameter-value\r\n"
    b"Via: SIP/2.0/TCP sip33.example.com\r\n"
    b"v: SIP/2.0/TCP sip32.example.com\r\n"
    b"V: SIP/2.0/TCP sip31.example.com\r\n"
    b"Via: SIP/2.0/TCP sip30.example.com\r\n"
    b"ViA: SIP/2.0/TCP sip29.example.com\r\n"
    b"VIa: SIP/2.0/TCP sip28.example.com\r\n"
    b"VIA: SIP/2.0/TCP sip27.example.com\r\n"
    b"via: SIP/2.0/TCP sip26.example.com\r\n"
    b"viA: SIP/2.0/TCP sip25.example.com\r\n"
    b"vIa: SIP/2.0/TCP sip24.example.com\r\n"
    b"vIA: SIP/2.0/TCP sip23.example.com\r\n"
    b"V :  SIP/2.0/TCP sip22.example.com\r\n"
    b"v :  SIP/2.0/TCP sip21.example.com\r\n"
    b"V  : SIP/2.0/TCP sip20.example.com\r\n"
    b"v  : SIP/2.0/TCP sip19.example.com\r\n"
    b"Via : SIP/2.0/TCP sip18.example.com\r\n"
    b"Via  : SIP/2.0/TCP sip17.example.com\r\n"
    b"Via: SIP/2.0/TCP sip16.example.com\r\n"
    b"Via: SIP/2.0/TCP sip15.example.com\r\n"
    b"Via: SIP/2.0/TCP sip14.example.com\r\n"
    b"Via: SIP/2.0/TCP sip13.example.com\r\n"
    b"Via: SIP/2.0/TCP sip12.example.com\r\n"
    b"Via: SIP/2.0/TCP sip11.example.com\r\n"
    b"Via: SIP/2.0/TCP sip10.example.com\r\n"
    b"Via: SIP/2.0/TCP sip9.example.com\r\n"
    b"Via: SIP/2.0/TCP sip8.example.com\r\n"
    b"Via: SIP/2.0/TCP sip7.example.com\r\n"
    b"Via: SIP/2.0/TCP sip6.example.com\r\n"
    b"Via: SIP/2.0/TCP sip5.example.com\r\n"
    b"Via: SIP/2.0/TCP sip4.example.com\r\n"
    b"Via: SIP/2.0/TCP sip3.example.com\r\n"
    b"Via: SIP/2.0/TCP sip2.example.com\r\n"
    b"Via: SIP/2.0/TCP sip1.example.com\r\n"
    b"Via: SIP/2.0/TCP host.example.com;received=192.0.2.5;branch=verylonglonglonglonglonglonglong"
    b"longlonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglong"
    b"longlonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglonglongbranchvalue"
    b"\r\n"
    b"Max-Forwards: 70\r\n"
    b"Contact: <sip:amazinglylongcallernameamazinglylongcallernameamazinglylongcallernameamazingly"
    b"longcallernameamazinglylongcallername@host5.example.net>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"l: 150\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.1.8 Extra Trailing Octets in a UDP Datagram (dblreq)
DBLREQ = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"To: sip:j.user@example.com\r\n"
    b"From: sip:j.user@example.com;tag=43251j3j324\r\n"
    b"Max-Forwards: 8\r\n"
    b"I: dblreq.0ha0isndaksdj99sdfafnl3lk233412\r\n"
    b"Contact: sip:j.user@host.example.com\r\n"
    b"CSeq: 8 REGISTER\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.125;branch=z9hG4bKkdjuw23492\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
    b"\r\n"
    b"INVITE sip:joe@example.com SIP/2.0\r\n"
    b"t: sip:joe@example.com\r\n"
    b"From: sip:caller@example.net;tag=141334\r\n"
    b"Max-Forwards: 8\r\n"
    b"Call-ID: dblreq.0ha0isnda977644900765@192.0.2.15\r\n"
    b"CSeq: 8 INVITE\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw380234\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 150\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.15\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.15\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m =video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.1.9 Semicolon-Separated Parameters in URI User Part (semiuri)
SEMIURI = (
    b"OPTIONS sip:user;par=u%40example.net@example.com SIP/2.0\r\n"
    b"To: sip:j_user@example.com\r\n"
    b"From: sip:caller@example.org;tag=33242\r\n"
    b"Max-Forwards: 3\r\n"
    b"Call-ID: semiuri.0ha0isndaksdj\r\n"
    b"CSeq: 8 OPTIONS\r\n"
    b"Accept: application/sdp, application/pkcs7-mime,\r\n"
    b"        multipart/mixed, multipart/signed,\r\n"
    b"        message/sip, message/sipfrag\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# 3.1.1.10 Varied and Unknown Transport Types (transports)
TRANSPORTS = (
    b"OPTIONS sip:user@example.com SIP/2.0\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: <sip:caller@example.com>;tag=323\r\n"
    b"Max-Forwards: 70\r\n"
    b"Call-ID:  transports.kijh4akdnaqjkwendsasfdj\r\n"
    b"Accept: application/sdp\r\n"
    b"CSeq: 60 OPTIONS\r\n"
    b"Via: SIP/2.0/UDP t1.example.com;branch=z9hG4bKkdjuw\r\n"
    b"Via: SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf\r\n"
    b"Via: SIP/2.0/TLS t3.example.com;branch=z9hG4bK2980unddj\r\n"
    b"Via: SIP/2.0/UNKNOWN t4.example.com;branch=z9hG4bKasd0f3en\r\n"
    b"Via: SIP/2.0/TCP t5.example.com;branch=z9hG4bK0a9idfnee\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# 3.1.1.11 Multipart MIME Message (binary part as the RFC's <hex>) (mpart01)
MPART01 = (
    b"MESSAGE sip:kumiko@example.org SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"Route: <sip:127.0.0.1:5080>\r\n"
    b"Identity: r5mwreLuyDRYBi/0TiPwEsY3rEVsk/G2WxhgTV1PF7hHuLIK0YWVKZhKv9Mj8UeXqkMVbnVq37CD+813gv"
    b"YjcBUaZngQmXc9WNZSDNGCzA+fWl9MEUHWIZo1CeJebdY/XlgKeTa0Olvq0rt70Q5jiSfbqMJmQFteeivUhkMWYUA="
    b"\r\n"
    b"Contact: <sip:fluffy@127.0.0.1:5070>\r\n"
    b"To: <sip:kumiko@example.org>\r\n"
    b"From: <sip:fluffy@example.com>;tag=2fb0dcc9\r\n"
    b"Call-ID: 3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..\r\n"
    b"CSeq: 1 MESSAGE\r\n"
    b"Content-Transfer-Encoding: binary\r\n"
    b"Content-Type: multipart/mixed;boundary=7a9cbec02ceef655\r\n"
    b"Date: Sat, 15 Oct 2005 04:44:56 GMT\r\n"
    b"User-Agent: SIPimp.org/0.2.5 (curses)\r\n"
    b"Content-Length: 553\r\n"
    b"\r\n"
    b"--7a9cbec02ceef655\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Transfer-Encoding: binary\r\n"
    b"\r\n"
    b"Hello\r\n"
    b"--7a9cbec02ceef655\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: binary\r\n"
    b"\r\n"
    + bytes.fromhex(
        "3082015206092A864886F70D010702A08201433082013F020101310930070605"
        "2B0E03021A300B06092A864886F70D010701318201203082011C020101307C30"
        "70310B3009060355040613025553311330110603550408130A43616C69666F72"
        "6E69613111300F0603550407130853616E204A6F7365310E300C060355040A13"
        "05736970697431293027060355040B1320536970697420546573742043657274"
        "6966696361746520417574686F7269747902080195007102330113300706052B"
        "0E03021A300D06092A864886F70D01010105000481808EF466F948F0522DD2E5"
        "978E9D95AAE9F2FE15A06659716292E8DA2AA8D8350A68CEFFAE3CBD2BFF1675"
        "DDD5648E593DD64728F26220F7E941749E330D9A15EDABDB93D10C42102E7B72"
        "89D29CC0C9AE2EFBC7C0CFF9172F3B027E4FC027E1546DE4B6AA3ABB3E66CCCB"
        "5DD6C64B8383149CB8E6FF182D944FE57B65BC99D005"
    )
    + b"\r\n--7a9cbec02ceef655--\r\n"
)

# 3.1.1.12 Unusual Reason Phrase (unreason)
UNREASON = (
    b"SIP/2.0 200 = 2**3 * 5**2 \xd0\xbd\xd0\xbe \xd1\x81\xd1\x82\xd0\xbe \xd0\xb4\xd0\xb5\xd0\xb2"
    b"\xd1\x8f\xd0\xbd\xd0\xbe\xd1\x81\xd1\x82\xd0\xbe \xd0\xb4\xd0\xb5\xd0\xb2\xd1\x8f\xd1\x82"
    b"\xd1\x8c - \xd0\xbf\xd1\x80\xd0\xbe\xd1\x81\xd1\x82\xd0\xbe\xd0\xb5\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\r\n"
    b"Call-ID: unreason.1234ksdfak3j2erwedfsASdf\r\n"
    b"CSeq: 35 INVITE\r\n"
    b"From: sip:user@example.com;tag=11141343\r\n"
    b"To: sip:user@example.edu;tag=2229\r\n"
    b"Content-Length: 154\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Contact: <sip:user@host198.example.com>\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.198\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.198\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.1.13 Empty Reason Phrase (noreason)
NOREASON = (
    b"SIP/2.0 100 \r\n"
    b"Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\r\n"
    b"Call-ID: noreason.asndj203insdf99223ndf\r\n"
    b"CSeq: 35 INVITE\r\n"
    b"From: <sip:user@example.com>;tag=39ansfi3\r\n"
    b"To: <sip:user@example.edu>;tag=902jndnke3\r\n"
    b"Content-Length: 0\r\n"
    b"Contact: <sip:user@host105.example.com>\r\n"
    b"\r\n"
)

# ---------------------------------------------------------------- 3.1.2 invalid messages

# 3.1.2.1 Extraneous Header Field Separators (badinv01)
BADINV01 = (
    b"INVITE sip:user@example.com SIP/2.0\r\n"
    b"To: sip:j.user@example.com\r\n"
    b"From: sip:caller@example.net;tag=134161461246\r\n"
    b"Max-Forwards: 7\r\n"
    b"Call-ID: badinv01.0ha0isndaksdjasdf3234nas\r\n"
    b"CSeq: 8 INVITE\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.15;;,;,,\r\n"
    b"Contact: \"Joe\" <sip:joe@example.org>;;;;\r\n"
    b"Content-Length: 152\r\n"
    b"Content-Type: application/sdp\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.15\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.15\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.2.2 Content Length Larger Than Message (clerr)
CLERR = (
    b"INVITE sip:user@example.com SIP/2.0\r\n"
    b"Max-Forwards: 80\r\n"
    b"To: sip:j.user@example.com\r\n"
    b"From: sip:caller@example.net;tag=93942939o2\r\n"
    b"Contact: <sip:caller@hungry.example.net>\r\n"
    b"Call-ID: clerr.0ha0isndaksdjweiafasdk3\r\n"
    b"CSeq: 8 INVITE\r\n"
    b"Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bK-39234-23523\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 9999\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.155\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.155\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.2.3 Negative Content-Length (ncl)
NCL = (
    b"INVITE sip:user@example.com SIP/2.0\r\n"
    b"Max-Forwards: 254\r\n"
    b"To: sip:j.user@example.com\r\n"
    b"From: sip:caller@example.net;tag=32394234\r\n"
    b"Call-ID: ncl.0ha0isndaksdj2193423r542w35\r\n"
    b"CSeq: 0 INVITE\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.53;branch=z9hG4bKkdjuw\r\n"
    b"Contact: <sip:caller@example53.example.net>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: -999\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.53\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.53\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.2.4 Request Scalar Fields with Overlarge Values (scalar02)
SCALAR02 = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bK342sdfoi3\r\n"
    b"To: <sip:user@example.com>\r\n"
    b"From: <sip:user@example.com>;tag=239232jh3\r\n"
    b"CSeq: 36893488147419103232 REGISTER\r\n"
    b"Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\r\n"
    b"Max-Forwards: 300\r\n"
    b"Expires: 10000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    b"000000000000000000\r\n"
    b"Contact: <sip:user@host129.example.com>\r\n"
    b"  ;expires=280297596632815\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

# 3.1.2.5 Response Scalar Fields with Overlarge Values (scalarlg)
SCALARLG = (
    b"SIP/2.0 503 Service Unavailable\r\n"
    b"Via: SIP/2.0/TCP host129.example.com;branch=z9hG4bKzzxdiwo34sw;received=192.0.2.129\r\n"
    b"To: <sip:user@example.com>\r\n"
    b"From: <sip:other@example.net>;tag=2easdjfejw\r\n"
    b"CSeq: 9292394834772304023312 OPTIONS\r\n"
    b"Call-ID: scalarlg.noase0of0234hn2qofoaf0232aewf2394r\r\n"
    b"Retry-After: 949302838503028349304023988\r\n"
    b"Warning: 1812 overture \"In Progress\"\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

# 3.1.2.6 Unterminated Quoted String in Display Name (quotbal)
QUOTBAL = (
    b"INVITE sip:user@example.com SIP/2.0\r\n"
    b"To: \"Mr. J. User <sip:j.user@example.com>\r\n"
    b"From: sip:caller@example.net;tag=93334\r\n"
    b"Max-Forwards: 10\r\n"
    b"Call-ID: quotbal.aksdj\r\n"
    b"Contact: <sip:caller@host59.example.net>\r\n"
    b"CSeq: 8 INVITE\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.59:5050;branch=z9hG4bKkdjuw39234\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 152\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.15\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.15\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.2.7 <> Enclosing Request-URI (ltgtruri)
LTGTRURI = (
    b"INVITE <sip:user@example.com> SIP/2.0\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: sip:caller@example.net;tag=39291\r\n"
    b"Max-Forwards: 23\r\n"
    b"Call-ID: ltgtruri.1@192.0.2.5\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.5\r\n"
    b"Contact: <sip:caller@host5.example.net>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 159\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.5\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.5\r\n"
    b"t=3149328700 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.2.8 Malformed SIP Request-URI (embedded LWS) (lwsruri)
LWSRURI = (
    b"INVITE sip:user@example.com; lr SIP/2.0\r\n"
    b"To: sip:user@example.com;tag=3xfe-9921883-z9f\r\n"
    b"From: sip:caller@example.net;tag=231413434\r\n"
    b"Max-Forwards: 5\r\n"
    b"Call-ID: lwsruri.asdfasdoeoi2323-asdfwrn23-asd834rk423\r\n"
    b"CSeq: 2130706432 INVITE\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw2395\r\n"
    b"Contact: <sip:caller@host1.example.net>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 159\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.1\r\n"
    b"t=3149328700 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.2.9 Multiple SP Separating Request-Line Elements (lwsstart)
LWSSTART = (
    b"INVITE  sip:user@example.com  SIP/2.0\r\n"
    b"Max-Forwards: 8\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: sip:caller@example.net;tag=8814\r\n"
    b"Call-ID: lwsstart.dfknq234oi243099adsdfnawe3@example.com\r\n"
    b"CSeq: 1893884 INVITE\r\n"
    b"Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw3923\r\n"
    b"Contact: <sip:caller@host1.example.net>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 150\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.2.10 SP Characters at End of Request-Line (trws)
TRWS = (
    b"OPTIONS sip:remote-target@example.com SIP/2.0  \r\n"
    b"Via: SIP/2.0/TCP host1.examle.com;branch=z9hG4bK299342093\r\n"
    b"To: <sip:remote-target@example.com>\r\n"
    b"From: <sip:local-resource@example.com>;tag=329429089\r\n"
    b"Call-ID: trws.oicu34958239neffasdhr2345r\r\n"
    b"Accept: application/sdp\r\n"
    b"CSeq: 238923 OPTIONS\r\n"
    b"Max-Forwards: 70\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

# 3.1.2.11 Escaped Headers in SIP Request-URI (escruri)
ESCRURI = (
    b"INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: sip:caller@example.net;tag=341518\r\n"
    b"Max-Forwards: 7\r\n"
    b"Contact: <sip:caller@host39923.example.net>\r\n"
    b"Call-ID: escruri.23940-asdfhj-aje3br-234q098w-fawerh2q-h4n5\r\n"
    b"CSeq: 149209342 INVITE\r\n"
    b"Via: SIP/2.0/UDP host-of-the-hour.example.com;branch=z9hG4bKkdjuw\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 150\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.2.12 Invalid Time Zone in Date Header Field (baddate)
BADDATE = (
    b"INVITE sip:user@example.com SIP/2.0\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: sip:caller@example.net;tag=2234923\r\n"
    b"Max-Forwards: 70\r\n"
    b"Call-ID: baddate.239423mnsadf3j23lj42--sedfnm234\r\n"
    b"CSeq: 1392934 INVITE\r\n"
    b"Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\n"
    b"Date: Fri, 01 Jan 2010 16:00:00 EST\r\n"
    b"Contact: <sip:caller@host5.example.net>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 150\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.5\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.5\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.2.13 Failure to Enclose name-addr URI in <> (regbadct)
REGBADCT = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: sip:user@example.com;tag=998332\r\n"
    b"Max-Forwards: 70\r\n"
    b"Call-ID: regbadct.k345asrl3fdbv@10.0.0.1\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw\r\n"
    b"Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# 3.1.2.14 Spaces within addr-spec (badaspec)
BADASPEC = (
    b"OPTIONS sip:user@example.org SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP host4.example.com:5060;branch=z9hG4bKkdju43234\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: \"Bell, Alexander\" <sip:a.g.bell@example.com>;tag=433423\r\n"
    b"To: \"Watson, Thomas\" < sip:t.watson@example.org >\r\n"
    b"Call-ID: badaspec.sdf0234n2nds0a099u23h3hnnw009cdkne3\r\n"
    b"Accept: application/sdp\r\n"
    b"CSeq: 3923239 OPTIONS\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# 3.1.2.15 Non-token Characters in Display Name (baddn)
BADDN = (
    b"OPTIONS sip:t.watson@example.org SIP/2.0\r\n"
    b"Via:     SIP/2.0/UDP c.example.com:5060;branch=z9hG4bKkdjuw\r\n"
    b"Max-Forwards:      70\r\n"
    b"From:    Bell, Alexander <sip:a.g.bell@example.com>;tag=43\r\n"
    b"To:      Watson, Thomas <sip:t.watson@example.org>\r\n"
    b"Call-ID: baddn.31415@c.example.com\r\n"
    b"Accept: application/sdp\r\n"
    b"CSeq:    3923239 OPTIONS\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# 3.1.2.16 Unknown Protocol Version (badvers)
BADVERS = (
    b"OPTIONS sip:t.watson@example.org SIP/7.0\r\n"
    b"Via:     SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw\r\n"
    b"Max-Forwards:     70\r\n"
    b"From:    A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe\r\n"
    b"To:      T. Watson <sip:t.watson@example.org>\r\n"
    b"Call-ID: badvers.31417@c.example.com\r\n"
    b"CSeq:    1 OPTIONS\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# 3.1.2.17 Start Line and CSeq Method Mismatch (mismatch01)
MISMATCH01 = (
    b"OPTIONS sip:user@example.com SIP/2.0\r\n"
    b"To: sip:j.user@example.com\r\n"
    b"From: sip:caller@example.net;tag=34525\r\n"
    b"Max-Forwards: 6\r\n"
    b"Call-ID: mismatch01.dj0234sxdfl3\r\n"
    b"CSeq: 8 INVITE\r\n"
    b"Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# 3.1.2.18 Unknown Method with CSeq Method Mismatch (mismatch02)
MISMATCH02 = (
    b"NEWMETHOD sip:user@example.com SIP/2.0\r\n"
    b"To: sip:j.user@example.com\r\n"
    b"From: sip:caller@example.net;tag=34525\r\n"
    b"Max-Forwards: 6\r\n"
    b"Call-ID: mismatch02.dj0234sxdfl3\r\n"
    b"CSeq: 8 INVITE\r\n"
    b"Contact: <sip:caller@host.example.net>\r\n"
    b"Via: SIP/2.0/UDP host.example.net;branch=z9hG4bKkdjuw\r\n"
    b"Content-Type: application/sdp\r\n"
    b"l: 138\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.1\r\n"
    b"c=IN IP4 192.0.2.1\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.1.2.19 Overlarge Response Code (bigcode)
BIGCODE = (
    b"SIP/2.0 4294967301 better not break the receiver\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.105;branch=z9hG4bK2398ndaoe\r\n"
    b"Call-ID: bigcode.asdof3uj203asdnf3429uasdhfas3ehjasdfas9i\r\n"
    b"CSeq: 353494 INVITE\r\n"
    b"From: <sip:user@example.com>;tag=39ansfi3\r\n"
    b"To: <sip:user@example.edu>;tag=902jndnke3\r\n"
    b"Content-Length: 0\r\n"
    b"Contact: <sip:user@host105.example.com>\r\n"
    b"\r\n"
)

# ---------------------------------------------------------------- 3.2 transaction layer semantics

# 3.2.1 Missing Transaction Identifier (badbranch)
BADBRANCH = (
    b"OPTIONS sip:user@example.com SIP/2.0\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: sip:caller@example.org;tag=33242\r\n"
    b"Max-Forwards: 3\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK\r\n"
    b"Accept: application/sdp\r\n"
    b"Call-ID: badbranch.sadonfo23i420jv0as0derf3j3n\r\n"
    b"CSeq: 8 OPTIONS\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# ---------------------------------------------------------------- 3.3 application layer semantics

# 3.3.1 Missing Required Header Fields (insuf)
INSUF = (
    b"INVITE sip:user@example.com SIP/2.0\r\n"
    b"CSeq: 193942 INVITE\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.95;branch=z9hG4bKkdj.insuf\r\n"
    b"Content-Type: application/sdp\r\n"
    b"l: 152\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.95\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.95\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.3.2 Request-URI with Unknown Scheme (unkscm)
UNKSCM = (
    b"OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: sip:caller@example.net;tag=384\r\n"
    b"Max-Forwards: 3\r\n"
    b"Call-ID: unkscm.nasdfasser0q239nwsdfasdkl34\r\n"
    b"CSeq: 3923423 OPTIONS\r\n"
    b"Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

# 3.3.3 Request-URI with Known but Atypical Scheme (novelsc)
NOVELSC = (
    b"OPTIONS soap.beep://192.0.2.103:3002 SIP/2.0\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: sip:caller@example.net;tag=384\r\n"
    b"Max-Forwards: 3\r\n"
    b"Call-ID: novelsc.asdfasser0q239nwsdfasdkl34\r\n"
    b"CSeq: 3923423 OPTIONS\r\n"
    b"Via: SIP/2.0/TCP host9.example.com;branch=z9hG4bKkdjuw39234\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

# 3.3.4 Unknown URI Schemes in Header Fields (unksm2)
UNKSM2 = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"To: isbn:2983792873\r\n"
    b"From: <http://www.example.com>;tag=3234233\r\n"
    b"Call-ID: unksm2.daksdj@hyphenated-host.example.com\r\n"
    b"CSeq: 234902 REGISTER\r\n"
    b"Max-Forwards: 70\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.21:5060;branch=z9hG4bKkdjuw\r\n"
    b"Contact: <name:John_Smith>\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# 3.3.5 Proxy-Require and Require (bext01)
BEXT01 = (
    b"OPTIONS sip:user@example.com SIP/2.0\r\n"
    b"To: sip:j_user@example.com\r\n"
    b"From: sip:caller@example.net;tag=242etr\r\n"
    b"Max-Forwards: 6\r\n"
    b"Call-ID: bext01.0ha0isndaksdj\r\n"
    b"Require: nothingSupportsThis, nothingSupportsThisEither\r\n"
    b"Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis\r\n"
    b"CSeq: 8 OPTIONS\r\n"
    b"Via: SIP/2.0/TLS fold-and-staple.example.com;branch=z9hG4bKkdjuw\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

# 3.3.6 Unknown Content-Type (invut)
INVUT = (
    b"INVITE sip:user@example.com SIP/2.0\r\n"
    b"Contact: <sip:caller@host5.example.net>\r\n"
    b"To: sip:j.user@example.com\r\n"
    b"From: sip:caller@example.net;tag=8392034\r\n"
    b"Max-Forwards: 70\r\n"
    b"Call-ID: invut.0ha0isndaksdjadsfij34n23d\r\n"
    b"CSeq: 235448 INVITE\r\n"
    b"Via: SIP/2.0/UDP somehost.example.com;branch=z9hG4bKkdjuw\r\n"
    b"Content-Type: application/unknownformat\r\n"
    b"Content-Length: 40\r\n"
    b"\r\n"
    b"<audio>\r\n"
    b" <pcmu port=\"443\"/>\r\n"
    b"</audio>\r\n"
)

# 3.3.7 Unknown Authorization Scheme (regaut01)
REGAUT01 = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"To: sip:j.user@example.com\r\n"
    b"From: sip:j.user@example.com;tag=87321hj23128\r\n"
    b"Max-Forwards: 8\r\n"
    b"Call-ID: regaut01.0ha0isndaksdj\r\n"
    b"CSeq: 9338 REGISTER\r\n"
    b"Via: SIP/2.0/TCP 192.0.2.253;branch=z9hG4bKkdjuw\r\n"
    b"Authorization: NoOneKnowsThisScheme opaque-data=here\r\n"
    b"Content-Length:0\r\n"
    b"\r\n"
)

# 3.3.8 Multiple Values in Single Value Required Fields (multi01)
MULTI01 = (
    b"INVITE sip:user@company.com SIP/2.0\r\n"
    b"Contact: <sip:caller@host25.example.net>\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.25;branch=z9hG4bKkdjuw\r\n"
    b"Max-Forwards: 70\r\n"
    b"CSeq: 5 INVITE\r\n"
    b"Call-ID: multi01.98asdh@192.0.2.1\r\n"
    b"CSeq: 59 INVITE\r\n"
    b"Call-ID: multi01.98asdh@192.0.2.2\r\n"
    b"From: sip:caller@example.com;tag=3413415\r\n"
    b"To: sip:user@example.com\r\n"
    b"To: sip:other@example.net\r\n"
    b"From: sip:caller@example.net;tag=2923420123\r\n"
    b"Content-Type: application/sdp\r\n"
    b"l: 154\r\n"
    b"Contact: <sip:caller@host36.example.net>\r\n"
    b"Max-Forwards: 5\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.25\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.25\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
    b"\r\n"
)

# 3.3.9 Multiple Content-Length Values (mcl01)
MCL01 = (
    b"OPTIONS sip:user@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bK293423\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: sip:other@example.net;tag=3923942\r\n"
    b"Call-ID: mcl01.fhn2323orihawfdoa3o4r52o3irsdf\r\n"
    b"CSeq: 15932 OPTIONS\r\n"
    b"Content-Length: 13\r\n"
    b"Max-Forwards: 60\r\n"
    b"Content-Length: 5\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"There's no way to know how many octets are supposed to be here.\r\n"
)

# 3.3.10 200 OK Response with Broadcast Via Header Field Value (bcast)
BCAST = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.198;branch=z9hG4bK1324923\r\n"
    b"Via: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1saber23\r\n"
    b"Call-ID: bcast.0384840201234ksdfak3j2erwedfsASdf\r\n"
    b"CSeq: 35 INVITE\r\n"
    b"From: sip:user@example.com;tag=11141343\r\n"
    b"To: sip:user@example.edu;tag=2229\r\n"
    b"Content-Length: 154\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Contact: <sip:user@host28.example.com>\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.198\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.198\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# 3.3.11 Max-Forwards of Zero (zeromf)
ZEROMF = (
    b"OPTIONS sip:user@example.com SIP/2.0\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: sip:caller@example.net;tag=3ghsd41\r\n"
    b"Call-ID: zeromf.jfasdlfnm2o2l43r5u0asdfas\r\n"
    b"CSeq: 39234321 OPTIONS\r\n"
    b"Via: SIP/2.0/UDP host1.example.com;branch=z9hG4bKkdjuw2349i\r\n"
    b"Max-Forwards: 0\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

# 3.3.12 REGISTER with a Contact Header Parameter (cparam01)
CPARAM01 = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe\r\n"
    b"To: sip:watson@example.com\r\n"
    b"Call-ID: cparam01.70710@saturn.example.com\r\n"
    b"CSeq: 2 REGISTER\r\n"
    b"Contact: sip:+19725552222@gw1.example.net;unknownparam\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# 3.3.13 REGISTER with a url-parameter (cparam02)
CPARAM02 = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: sip:watson@example.com;tag=838293\r\n"
    b"To: sip:watson@example.com\r\n"
    b"Call-ID: cparam02.70710@saturn.example.com\r\n"
    b"CSeq: 3 REGISTER\r\n"
    b"Contact: <sip:+19725552222@gw1.example.net;unknownparam>\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

# 3.3.14 REGISTER with a URL Escaped Header (regescrt)
REGESCRT = (
    b"REGISTER sip:example.com SIP/2.0\r\n"
    b"To: sip:user@example.com\r\n"
    b"From: sip:user@example.com;tag=8\r\n"
    b"Max-Forwards: 70\r\n"
    b"Call-ID: regescrt.k345asrl3fdbv@192.0.2.1\r\n"
    b"CSeq: 14398234 REGISTER\r\n"
    b"Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\r\n"
    b"M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>\r\n"
    b"L:0\r\n"
    b"\r\n"
)

# 3.3.15 Unacceptable Accept Offering (sdp01)
SDP01 = (
    b"INVITE sip:user@example.com SIP/2.0\r\n"
    b"To: sip:j_user@example.com\r\n"
    b"Contact: <sip:caller@host15.example.net>\r\n"
    b"From: sip:caller@example.net;tag=234\r\n"
    b"Max-Forwards: 5\r\n"
    b"Call-ID: sdp01.ndaksdj9342dasdd\r\n"
    b"Accept: text/nobodyKnowsThis\r\n"
    b"CSeq: 8 INVITE\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.15;branch=z9hG4bKkdjuw\r\n"
    b"Content-Length: 150\r\n"
    b"Content-Type: application/sdp\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.5\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.5\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0 12\r\n"
    b"m=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# ---------------------------------------------------------------- 3.4 backward compatibility

# 3.4.1 INVITE with RFC 2543 Syntax (inv2543)
INV2543 = (
    b"INVITE sip:UserB@example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP iftgw.example.com\r\n"
    b"From: <sip:+13035551111@ift.client.example.net;user=phone>\r\n"
    b"Record-Route: <sip:UserB@example.com;maddr=ss1.example.com>\r\n"
    b"To: sip:+16505552222@ss1.example.net;user=phone\r\n"
    b"Call-ID: inv2543.1717@ift.client.example.com\r\n"
    b"CSeq: 56 INVITE\r\n"
    b"Content-Type: application/sdp\r\n"
    b"\r\n"
    b"v=0\r\n"
    b"o=mhandley 29739 7272939 IN IP4 192.0.2.5\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.5\r\n"
    b"t=0 0\r\n"
    b"m=audio 49217 RTP/AVP 0\r\n"
)
UDP = Flow("udp", ("192.0.2.1", 5060))
TCP = Flow("tcp", ("192.0.2.1", 40000), conn_id=1)


@dataclass
class Sent:
    """What the endpoint sent, read without our parser: a refusal echoes the peer's broken headers."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    flow: Flow

    def get(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n.lower() == name.lower()), None)


def endpoint() -> SipEndpoint:
    return SipEndpoint(contact_host="127.0.0.1", contact_port=5060, rng=random.Random(4475))


def feed(ep: SipEndpoint, data: bytes, flow: Flow = UDP, now: float = 0.0) -> tuple[list[Sent], list[SipEvent]]:
    ep.receive(data, flow, now)
    sent = []
    for out in ep.messages_to_send():
        head = out.data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
        _, code, reason = head[0].split(" ", 2)
        fields = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in head[1:])]
        sent.append(Sent(int(code), reason, fields, out.flow))
    events = []
    while (ev := ep.next_event()) is not None:
        events.append(ev)
    return sent, events


_probes = 0


def assert_still_answers(ep: SipEndpoint, flow: Flow = UDP, now: float = 0.0) -> None:
    """A plain OPTIONS (fresh transaction, fresh Call-ID) still gets its 200."""
    global _probes
    _probes += 1
    probe = (
        "OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/{flow.transport.upper()} 192.0.2.1:5060;branch=z9hG4bKprobe{_probes};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:prober@192.0.2.1>;tag=probe{_probes}\r\n"
        "To: <sip:probe@127.0.0.1>\r\n"
        f"Call-ID: probe-{_probes}@192.0.2.1\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    sent, events = feed(ep, probe, flow, now)
    assert [s.status for s in sent] == [200] and events == []
    assert ep.internal_errors == 0


def body_of(message: bytes) -> bytes:
    return message.split(b"\r\n\r\n", 1)[1]


# ---------------------------------------------------------------- refused: 400 / 4xx / 505

# name -> (message, status, what the reason phrase and the Warning must name; None: not a 400)
REFUSED: dict[str, tuple[bytes, int, str | None]] = {
    "badinv01": (BADINV01, 400, "Via"),  # ';;,;,,' (the Contact's ';;;;' is refused as well)
    "clerr": (CLERR, 400, "Content-Length"),  # over UDP; over TCP the framer waits (below)
    "ncl": (NCL, 400, "Content-Length"),
    "scalar02": (SCALAR02, 400, "CSeq"),  # CSeq >= 2**31 (Max-Forwards 300 would be refused too)
    "quotbal": (QUOTBAL, 400, "To"),  # RFC: may infer the missing quote; we do not guess
    "ltgtruri": (LTGTRURI, 400, "Request-URI"),  # '<sip' is no URI scheme: 400, not 416
    "lwsruri": (LWSRURI, 400, "Request-URI"),
    "lwsstart": (LWSSTART, 400, "request line"),  # RFC: may ignore the extra SP; we refuse
    "trws": (TRWS, 400, "request line"),  # RFC: may ignore the trailing SP; we refuse
    "escruri": (ESCRURI, 400, "Request-URI"),  # RFC: may ignore the escaped headers; we refuse
    "baddate": (BADDATE, 400, "Date"),  # RFC: may ignore a Date it does not use; we refuse
    "regbadct": (REGBADCT, 400, "Contact"),  # RFC: may infer the <>; we refuse (before REGISTER's 405)
    "badaspec": (BADASPEC, 400, "To"),  # RFC: may ignore the spaces; we refuse
    "baddn": (BADDN, 400, "From"),  # RFC: may infer the quotes; we refuse
    "badvers": (BADVERS, 505, "SIP/7.0"),
    "mismatch01": (MISMATCH01, 400, "CSeq"),
    "mismatch02": (MISMATCH02, 400, "CSeq"),  # RFC prefers 501, allows 400: the mismatch is found first
    "unksm2": (UNKSM2, 400, "From"),  # http: From / isbn: To are no use to a UA (a registrar: 400 too)
    "multi01": (MULTI01, 400, "Call-ID"),  # duplicate Call-ID/CSeq/From/To; the first is reported
    "mcl01": (MCL01, 400, "Content-Length"),
    "unkscm": (UNKSCM, 416, None),
    "novelsc": (NOVELSC, 416, None),  # soap.beep is registered, but never ours: 416 like any unknown
    "bext01": (BEXT01, 420, None),
    "invut": (INVUT, 415, None),  # no Content-Disposition: handling=required by default
    "sdp01": (SDP01, 406, None),  # RFC allows 406 (with a Warning) or 400
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_invalid_request_is_refused_and_reaches_no_dialog(name: str) -> None:
    message, status, names = REFUSED[name]
    ep = endpoint()
    sent, events = feed(ep, message)
    assert [s.status for s in sent] == [status], (name, [(s.status, s.reason) for s in sent])
    assert events == [] and ep.active_calls() == [] and ep.internal_errors == 0
    (reply,) = sent
    assert reply.flow.remote[0] == "192.0.2.1"
    assert reply.get("Call-ID") and reply.get("CSeq") and reply.get("Via")  # the peer can match it
    to = reply.get("To")
    assert to is not None and "tag=" in to
    if names is not None:
        warning = reply.get("Warning") or ""
        assert warning.startswith("399 127.0.0.1:5060 ") and names in warning, warning
        if status == 400:
            assert reply.reason.startswith("Bad Request (") and names in reply.reason, reply.reason
    assert_still_answers(ep)


def test_refusals_carry_what_the_peer_needs() -> None:
    ep = endpoint()
    (r,), _ = feed(ep, BEXT01)  # Require, not Proxy-Require (a UAS ignores that one)
    assert r.get("Unsupported") == "nothingSupportsThis, nothingSupportsThisEither"
    (r,), _ = feed(ep, INVUT)
    assert r.get("Accept") == "application/sdp"
    (r,), _ = feed(ep, SDP01)
    assert r.get("Accept") == "application/sdp" and (r.get("Warning") or "").startswith("399 ")
    (r,), _ = feed(ep, INTMETH)
    assert r.status == 501 and "INVITE" in (r.get("Allow") or "")
    # A transaction-stateful refusal: the retransmission gets the same answer, nothing new.
    (r,), _ = feed(ep, UNKSCM)
    assert r.status == 416
    (again,), events = feed(ep, UNKSCM)
    assert again.status == 416 and again.get("To") == r.get("To") and events == []
    assert ep.internal_errors == 0


def test_unknown_body_marked_optional_is_ignored_and_encoded_body_refused() -> None:
    # RFC 3261 §20.11: handling=optional lets the UAS ignore a body type it does not know; the
    # INVITE then carries no offer (the 200 will).
    optional = INVUT.replace(b"Content-Length: 40\r\n",
                             b"Content-Disposition: render;handling=optional\r\nContent-Length: 40\r\n")
    ep = endpoint()
    sent, events = feed(ep, optional)
    assert [s.status for s in sent] == [100]
    (ev,) = events
    assert isinstance(ev, IncomingCall) and ev.offer is None
    gzipped = SDP01.replace(b"Accept: text/nobodyKnowsThis\r\n", b"Content-Encoding: gzip\r\n")
    sent, events = feed(endpoint(), gzipped)
    assert [s.status for s in sent] == [415] and sent[0].get("Accept-Encoding") == "identity" and events == []


# name -> message; what RFC 4475 says to drop, or what cannot be answered
DROPPED: dict[str, bytes] = {
    "scalarlg": SCALARLG,  # a response: simply discarded
    "bigcode": BIGCODE,  # a response: simply discarded
    "bcast": BCAST,  # well formed, but two Vias: not a response to us (RFC 3261 §8.1.3.3)
    # RFC: "ideally" 400. Without Call-ID, From and To no proper response can be built, and
    # test_sip_endpoint.py pins that such a request is dropped: the sender's transaction times out.
    "insuf": INSUF,
}


@pytest.mark.parametrize("name", sorted(DROPPED))
def test_unanswerable_message_is_dropped(name: str) -> None:
    ep = endpoint()
    sent, events = feed(ep, DROPPED[name])
    assert sent == [] and events == [] and ep.internal_errors == 0
    assert_still_answers(ep)


def test_bad_responses_do_not_parse_and_bcast_does() -> None:
    for bad in (SCALARLG, BIGCODE):
        with pytest.raises(SipParseError):
            parse_message(bad)
    msg = parse_message(BCAST)
    assert isinstance(msg, SipResponse) and msg.status == 200 and len(msg.vias) == 2


@pytest.mark.parametrize("message", [NCL, MCL01])
def test_framing_errors_over_tcp(message: bytes) -> None:
    # RFC 4475 §3.1.2.3, §3.3.9: over a stream these cannot be framed; the connection must close.
    with pytest.raises(FramingError):
        StreamFramer().feed(message)


def test_framer_waits_for_a_long_content_length_and_frames_binary_bodies() -> None:
    framer = StreamFramer()
    assert framer.feed(CLERR) == []  # RFC 4475 §3.1.2.2: nothing to do but wait for more
    assert StreamFramer().feed(MPART01 + WSINV) == [MPART01, WSINV]  # NULs and CRLFs in the body


# ---------------------------------------------------------------- accepted

# name -> (message, the answer: a status, or "call" for 100 Trying + IncomingCall)
ACCEPTED: dict[str, tuple[bytes, int | str]] = {
    "wsinv": (WSINV, 481),  # well formed; its To tag makes it mid-dialog, for a dialog we do not have
    "intmeth": (INTMETH, 501),  # RFC: endpoints answer an unknown method 501 with Allow
    "esc01": (ESC01, "call"),
    "escnull": (ESCNULL, 405),  # REGISTER: we are no registrar
    "esc02": (ESC02, 501),  # RE%47IST%45R is not REGISTER but an unknown method
    "lwsdisp": (LWSDISP, 200),
    "longreq": (LONGREQ, "call"),
    "dblreq": (DBLREQ, 405),  # the REGISTER only; the INVITE after its empty body is noise
    "semiuri": (SEMIURI, 200),
    "transports": (TRANSPORTS, 200),
    "mpart01": (MPART01, 405),  # MESSAGE is not served, but the message frames and parses
    "badbranch": (BADBRANCH, 200),  # RFC: 400, or match as RFC 2543 does; we match as RFC 2543 does
    "zeromf": (ZEROMF, 200),  # Max-Forwards 0 stops proxies; an endpoint processes the request
    "regaut01": (REGAUT01, 405),  # RFC: an endpoint that is no registrar answers 405
    "cparam01": (CPARAM01, 405),
    "cparam02": (CPARAM02, 405),
    "regescrt": (REGESCRT, 405),
    "inv2543": (INV2543, "call"),  # no branch, no From tag, no Content-Length, no Max-Forwards
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_valid_message_parses_and_gets_a_sensible_answer(name: str) -> None:
    message, expected = ACCEPTED[name]
    msg = parse_message(message)
    assert isinstance(msg, SipRequest)
    again = parse_message(msg.to_bytes())  # and what we would forward serialises to a valid message
    assert isinstance(again, SipRequest) and again.method == msg.method and again.body == msg.body
    ep = endpoint()
    sent, events = feed(ep, message)
    if expected == "call":
        assert [s.status for s in sent] == [100]
        (ev,) = events
        assert isinstance(ev, IncomingCall) and ev.offer == msg.body and ev.offer
    else:
        assert [s.status for s in sent] == [expected] and events == []
    assert ep.internal_errors == 0
    assert_still_answers(ep)


def test_valid_messages_parse_to_what_the_rfc_says() -> None:
    wsinv = parse_message(WSINV)
    assert isinstance(wsinv, SipRequest) and wsinv.method == "INVITE"
    assert wsinv.uri.user == "vivekg" and wsinv.uri.has_param("unknownparam")
    assert wsinv.cseq.seq == 9 and wsinv.cseq.method == "INVITE"
    assert wsinv.headers.get("Max-Forwards") == "0068" and wsinv.headers.get("Subject") == ""
    assert [(v.transport, v.host) for v in wsinv.vias] == [
        ("UDP", "192.0.2.2"), ("TCP", "spindle.example.com"), ("UDP", "192.168.255.111")]
    assert wsinv.vias[1].branch == "z9hG4bK9ikj8" and wsinv.vias[2].branch == "z9hG4bK30239"
    assert wsinv.from_.display == 'J Rosenberg \\"' and wsinv.from_.tag == "98asjd8"
    assert wsinv.to.tag == "1918181833n" and len(wsinv.body) == 150
    assert wsinv.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert wsinv.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"

    intmeth = parse_message(INTMETH)
    assert isinstance(intmeth, SipRequest) and intmeth.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert intmeth.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert intmeth.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert intmeth.uri.host == "example.com" and intmeth.uri.headers == ""
    assert intmeth.to.display == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert intmeth.from_.display == "token1~` token2'+_ token3*%!.-"
    assert intmeth.from_.tag == "_token~1'+`*%!-."

    esc01 = parse_message(ESC01)
    assert isinstance(esc01, SipRequest) and esc01.uri.user_text == "sips:user@example.com"
    assert esc01.from_.uri.user_text == "I have spaces" and esc01.to.uri.user_text == "user"

    escnull = parse_message(ESCNULL)
    assert escnull.to.uri.user_text == "null-\x00-null" and len(escnull.headers.get_all("Contact")) == 2

    esc02 = parse_message(ESC02)
    assert isinstance(esc02, SipRequest) and esc02.method == "RE%47IST%45R"
    assert esc02.to.display == "%Z%45" and len(esc02.headers.get_all("Contact")) == 2

    assert parse_message(LWSDISP).from_.display == "caller"
    longreq = parse_message(LONGREQ)
    assert len(longreq.vias) == 34 and longreq.vias[0].host == "sip33.example.com"
    dblreq = parse_message(DBLREQ)
    assert isinstance(dblreq, SipRequest) and dblreq.method == "REGISTER" and dblreq.body == b""
    semiuri = parse_message(SEMIURI)
    assert isinstance(semiuri, SipRequest) and semiuri.uri.user_text == "user;par=u@example.net"
    assert semiuri.uri.host == "example.com"
    transports = parse_message(TRANSPORTS)
    assert [v.transport for v in transports.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    mpart01 = parse_message(MPART01)
    assert len(mpart01.body) == 553 and b"\x00" in mpart01.body and mpart01.content_type == "multipart/mixed"
    unreason = parse_message(UNREASON)
    assert isinstance(unreason, SipResponse) and unreason.status == 200
    assert unreason.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    noreason = parse_message(NOREASON)
    assert isinstance(noreason, SipResponse) and noreason.status == 100 and noreason.reason == ""


@pytest.mark.parametrize("message", [UNREASON, NOREASON])
def test_valid_responses_to_no_transaction_of_ours_are_dropped(message: bytes) -> None:
    ep = endpoint()
    assert feed(ep, message) == ([], [])
    assert ep.internal_errors == 0
    assert_still_answers(ep)


def test_badbranch_retransmission_is_absorbed() -> None:
    ep = endpoint()
    (first,), _ = feed(ep, BADBRANCH)
    (again,), _ = feed(ep, BADBRANCH)  # matched as RFC 2543 does: same transaction, same 200
    assert first.status == again.status == 200 and first.get("To") == again.get("To")


# ---------------------------------------------------------------- numbers that used to escape

_BASE = (
    b"OPTIONS sip:room@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnum\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:a@192.0.2.1>;tag=n1\r\n"
    b"To: <sip:room@127.0.0.1>\r\n"
    b"Call-ID: num@192.0.2.1\r\n"
    b"CSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)


@pytest.mark.parametrize("old, new, names", [
    (b"Content-Length: 0", b"Content-Length: \xb2", "Content-Length"),  # latin-1 '²': isdigit(), not int()
    (b"Content-Length: 0", b"Content-Length: " + b"9" * 5000, "Content-Length"),  # int() digit limit
    (b"CSeq: 1 ", b"CSeq: " + b"1" * 5000 + b" ", "CSeq"),
    (b"192.0.2.1:5060;", b"192.0.2.1:" + b"5" * 5000 + b";", "Via"),
    (b"Max-Forwards: 70", b"Max-Forwards: " + b"7" * 5000, "Max-Forwards"),
    (b"Max-Forwards: 70", b"Max-Forwards: 256", "Max-Forwards"),
])
def test_absurd_numbers_get_400_not_an_internal_error(old: bytes, new: bytes, names: str) -> None:
    ep = endpoint()
    sent, events = feed(ep, _BASE.replace(old, new))
    assert [s.status for s in sent] == [400] and names in sent[0].reason and events == []
    assert ep.internal_errors == 0


@pytest.mark.parametrize("length", [b"9" * 5000, b"\xb2", b"-1"])
def test_framer_refuses_an_absurd_content_length(length: bytes) -> None:
    with pytest.raises(FramingError):
        StreamFramer().feed(_BASE.replace(b"Content-Length: 0", b"Content-Length: " + length))


# ---------------------------------------------------------------- hypothesis: nothing raises

_VALID_INVITE = (
    b"INVITE sip:room1@127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKfuzz;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: \"Alice\" <sip:alice@192.0.2.1>;tag=fz\r\n"
    b"To: <sip:room1@127.0.0.1>\r\n"
    b"Call-ID: fuzz@192.0.2.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.1:5060>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 129\r\n\r\n"
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)
_SEEDS = [_VALID_INVITE, WSINV, INTMETH, ESC01, LONGREQ, INV2543, MPART01, BADINV01, MULTI01, BADVERS,
          LWSRURI, QUOTBAL, UNKSCM, SDP01, INVUT, BCAST, NOREASON]
_SPLICE = [b"\r\n", b"\r\n ", b":", b";", b";;", b",", b"<", b">", b'"', b"\\", b" ", b"\t", b"%", b"@",
           b"?", b"=", b"\x00", b"\xff", b"\xb2", b"SIP/2.0", b"SIP/7.0", b"z9hG4bK", b"tag=", b"-1", b"0",
           b"99999999999999999999", b"v: ", b"l: ", b"Via: ", b"Content-Length: ", b"Require: x\r\n"]


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "duplicate", "delete", "splice"]))
        if not data:
            break
        if op == "flip":
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))):]
        elif op == "duplicate":  # a header line (or any line) repeated, possibly many times
            lines = bytes(data).split(b"\r\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines[i:i] = [lines[i]] * draw(st.integers(1, 3))
            data = bytearray(b"\r\n".join(lines))
        elif op == "delete":
            i = draw(st.integers(0, len(data) - 1))
            del data[i:i + draw(st.integers(1, 40))]
        else:
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.sampled_from(_SPLICE))
    return bytes(data)


_ANY_MESSAGE = st.one_of(st.binary(max_size=400), mutated_messages())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_ANY_MESSAGE, min_size=1, max_size=4), st.sampled_from([UDP, TCP]))
def test_no_message_makes_the_endpoint_raise(datas: list[bytes], flow: Flow) -> None:
    ep = endpoint()
    for i, data in enumerate(datas):
        try:
            parse_message(data)
        except SipParseError:
            pass  # the only exception the parser may raise
        ep.receive(data, flow, float(i))  # receive() counts what it had to swallow in internal_errors
        ep.messages_to_send()
        while ep.next_event() is not None:
            pass
        assert ep.internal_errors == 0
    ep.handle_timer(100.0)
    ep.messages_to_send()  # retransmissions of earlier final responses
    assert ep.internal_errors == 0
    assert_still_answers(ep, flow, now=100.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(_ANY_MESSAGE, min_size=1, max_size=3), st.integers(1, 64))
def test_framer_raises_only_framing_error(datas: list[bytes], chunk: int) -> None:
    stream = b"".join(datas)
    framer = StreamFramer()
    try:
        for i in range(0, len(stream), chunk):
            framer.feed(stream[i:i + chunk])
    except FramingError:
        pass
