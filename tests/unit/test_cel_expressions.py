"""CEL expressions as ValidatingAdmissionPolicy evaluates them: kube's libraries (cases quoted
from k8s.io/apiserver/pkg/cel/library/*_test.go, k8s.io/apiserver/pkg/admission/plugin/cel/
*_test.go and k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/validation_test.go),
kube's and cel-go's words for errors, lazy composited variables and the authorizer."""

from __future__ import annotations

import datetime
import ipaddress
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from handlers.admission.cel import expressions
from handlers.admission.cel.authorizer import ALLOW, NO_OPINION
from handlers.admission.cel.expressions import CompileError, Context, EvaluationError, Expression
from handlers.admission.cel.quantity import Quantity, QuantityError, parse

OBJECT = {
    "apiVersion": "v1",
    "kind": "Endpoints",
    "metadata": {"name": "endpoints1", "namespace": "default", "labels": {"app": "web"}},
    "spec": {
        "priority": 3,
        "ints": [1, 2, 2, 3],
        "unsortedInts": [2, 1],
        "doubles": [1.0, 2.0, 2.0, 3.0],
        "strings": ["a", "b", "b", "c"],
        "str": "abc 123 def 456",
        "url": "https://kubernetes.io:80/docs/home?k1=a&k2=b&k2=c",
        "memory": "1.5Gi",
        "when": "2024-05-06T07:08:09Z",
    },
    "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}],
}
REQUEST = {
    "kind": {"group": "", "version": "v1", "kind": "Endpoints"},
    "resource": {"group": "", "version": "v1", "resource": "endpoints"},
    "subResource": "",
    "name": "endpoints1",
    "namespace": "default",
    "operation": "CREATE",
    "userInfo": {"username": "alice"},
}


class FakeAuthorizer:
    """Allows what ``allowed`` lists (as (verb, resource or path)), records every question."""

    def __init__(self, allowed: set[tuple[str, str]], user: str = "alice") -> None:
        self.allowed = allowed
        self.user = user
        self.calls: list[dict[str, str]] = []

    def __call__(
        self,
        *,
        group: str,
        resource: str,
        subresource: str,
        namespace: str,
        name: str,
        verb: str,
        path: str = "",
    ) -> tuple[str, str]:
        call = {"group": group, "resource": resource, "subresource": subresource}
        call |= {"namespace": namespace, "name": name, "verb": verb, "path": path}
        self.calls.append(call | {"user": self.user})
        if (verb, path or resource) in self.allowed:
            return ALLOW, f"{self.user} may"
        return NO_OPINION, f"{self.user} may not"

    def for_user(self, user: str, groups: tuple[str, ...]) -> FakeAuthorizer:
        scoped = FakeAuthorizer(self.allowed, user)
        scoped.calls = self.calls
        assert groups[0] == "system:serviceaccounts"
        return scoped


def context(
    variables: Mapping[str, Expression] | None = None,
    authorizer: FakeAuthorizer | None = None,
    obj: Any = OBJECT,
) -> Context:
    return Context(
        object=obj,
        oldObject=None,
        request=REQUEST,
        params=None,
        namespaceObject=None,
        authorizer=authorizer,
        variables=variables or {},
    )


def run(text: str, ctx: Context | None = None) -> Any:
    return expressions.compile(text).evaluate(ctx or context())


def error_of(text: str, ctx: Context | None = None) -> str:
    with pytest.raises(EvaluationError) as raised:
        run(text, ctx)
    return str(raised.value)


# Compiling ------------------------------------------------------------------------------


def test_the_same_text_compiles_once_to_the_same_expression() -> None:
    first = expressions.compile("object.spec.priority <= 5 && true")
    assert expressions.compile("object.spec.priority <= 5 && true") is first
    assert first.text == "object.spec.priority <= 5 && true"


def test_a_syntax_error_is_worded_as_kube_words_it() -> None:
    with pytest.raises(CompileError) as raised:
        expressions.compile("object.spec.priority <= ")
    assert str(raised.value) == (
        "compilation failed: ERROR: <input>:1:25: Syntax error: mismatched input '<EOF>' "
        "expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, "
        "NUM_UINT, STRING, BYTES, IDENTIFIER}\n | object.spec.priority <= \n | "
        "........................^"
    )


def test_a_missing_parenthesis_is_kubes_syntax_error() -> None:
    # compile_test.go: "'asdf'.contains('x'": "Syntax error: missing ')' at"
    with pytest.raises(CompileError, match=r"Syntax error: missing '\)' at"):
        expressions.compile("'asdf'.contains('x'")


def test_an_undeclared_reference_is_worded_as_kube_words_it() -> None:
    with pytest.raises(CompileError) as raised:
        expressions.compile("object.foo < invalid.x")
    assert str(raised.value) == (
        "compilation failed: ERROR: <input>:1:14: undeclared reference to 'invalid' "
        "(in container '')\n | object.foo < invalid.x\n | .............^"
    )
    assert "INVALID_ARGUMENT" not in str(raised.value)


def test_a_type_error_between_literals_is_found_when_compiling() -> None:
    # composition_test.go: "1 == '1'"
    with pytest.raises(CompileError, match=r"found no matching overload for '_==_' applied to "):
        expressions.compile("1 == '1'")


def test_every_vap_variable_is_declared() -> None:
    text = " && ".join(f"{name} == null || true" for name in expressions.VARIABLES)
    assert expressions.compile(text).output_type == "bool"


def test_the_output_type_is_spelled_as_kube_spells_it() -> None:
    assert expressions.compile("object.spec").output_type == "dyn"
    assert expressions.compile("[1, 2]").output_type == "list(int)"
    assert expressions.compile("{'a': 1}").output_type == "map(string, int)"
    assert expressions.compile("timestamp('2020-01-01T00:00:00Z')").output_type == (
        "google.protobuf.Timestamp"
    )


# Runtime errors -------------------------------------------------------------------------


def test_a_missing_field_is_cel_gos_no_such_key() -> None:
    assert error_of("object.spec.missing == 1") == "no such key: missing"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("object.spec.priority / 0 == 1", "division by zero"),
        ("object.spec.priority % 0 == 1", "modulus by zero"),
        ("object.subsets[114514].addresses.size() == 0", "index out of bounds: 114514"),
        ("object.spec.priority < object.metadata.name", "no such overload"),
        ("object.spec.priority.isSorted()", "no such overload: isSorted(int)"),
        ("object.spec.priority + 9223372036854775807 > 0", "integer overflow"),
    ],
)
def test_runtime_errors_are_worded_as_cel_go_words_them(text: str, message: str) -> None:
    assert error_of(text) == message


def test_an_error_on_the_other_side_of_a_true_or_is_absorbed() -> None:
    assert run("object.spec.missing == 1 || true") is True


# kube's lists library -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [  # validation_test.go, with self = object.spec
        "object.spec.ints.sum() == 8",
        "object.spec.ints.min() == 1",
        "object.spec.ints.max() == 3",
        "object.spec.ints.isSorted()",
        "object.spec.unsortedInts.isSorted() == false",
        "object.spec.ints.indexOf(2) == 1",
        "object.spec.ints.lastIndexOf(2) == 2",
        "object.spec.ints.indexOf(10) == -1",
        "object.spec.ints.lastIndexOf(10) == -1",
        "object.spec.doubles.sum() == 8.0",
        "object.spec.doubles.min() == 1.0",
        "object.spec.doubles.indexOf(2.0) == 1",
        "object.spec.strings.min() == 'a'",
        "object.spec.strings.max() == 'c'",
        "object.spec.strings.lastIndexOf('b') == 2",
        "[[1], [2]].indexOf([1]) == 0",
        "[{'a': 1}, {'b': 2}].lastIndexOf({'b': 2}) == 1",
        "([0] + []).min() == 0",
        "dyn([]).sum() == 0",
        "dyn([1, 2]).sum() == 3",
        "dyn([1.0, 2.0]).sum() == 3.0",
        "[].sum() == 0",
        "[1, 2, 3, 4].isSorted()",
        "[1, 2, 3].includes(2)",
    ],
)
def test_kubes_lists_library(text: str) -> None:
    assert run(text) is True


@pytest.mark.parametrize("name", ["min", "max"])
def test_the_extreme_of_an_empty_list_is_kubes_error(name: str) -> None:
    assert error_of(f"dyn([]).{name}() == 1") == f"{name} called on empty list"


# cel-go's strings, lists and sets extensions ----------------------------------------------


@pytest.mark.parametrize(
    "text",
    [  # validation_test.go, with self.val1 = 'Rook takes 👑'
        "'Rook takes 👑'.charAt(3) == 'k'",
        "'Rook takes 👑'.indexOf('o') == 1",
        "'Rook takes 👑'.indexOf('o', 2) == 2",
        "'Rook takes 👑'.replace(' ', 'x') == 'Rookxtakesx👑'",
        "'Rook takes 👑'.replace(' ', 'x', 1) == 'Rookxtakes 👑'",
        "'Rook takes 👑'.split(' ') == ['Rook', 'takes', '👑']",
        "'Rook takes 👑'.split(' ', 2) == ['Rook', 'takes 👑']",
        "'Rook takes 👑'.substring(5) == 'takes 👑'",
        "'Rook takes 👑'.substring(0, 4) == 'Rook'",
        "'Rook takes 👑'.substring(4, 10).trim() == 'takes'",
        "'Rook takes 👑'.lowerAscii() == 'rook takes 👑'",
        "['a', 'b', 'c'].join('-') == 'a-b-c'",
        "['a', 'b', 'c'].join() == 'abc'",
        "'%d %s %f %s %s'.format([1, 'abc', 1.0, duration('1m'), "
        "timestamp('2000-01-01T00:00:00.000Z')]) == '1 abc 1.000000 60s 2000-01-01T00:00:00Z'",
        "'%o %o %o'.format([7, 8, 9]) == '7 10 11'",
        "'%b %b %b'.format([7, 8, 9]) == '111 1000 1001'",
        # cel-go's ext/strings.go examples
        "'hello mellow'.lastIndexOf('ello', 6) == 1",
        "'hello mellow'.indexOf('', 2) == 2",
        "'hello'.charAt(5) == ''",
        "'TacoCÆt Xii'.upperAscii() == 'TACOCÆT XII'",
        "'hello hello'.replace('', '_') == '_h_e_l_l_o_ _h_e_l_l_o_'",
        "'hello hello hello'.split(' ', 0) == []",
        "'  \\ttrim\\n    '.trim() == 'trim'",
        "'gums'.reverse() == 'smug'",
        "strings.quote('single-quote with \"double quote\"') == "
        '\'"single-quote with \\\\"double quote\\\\""\'',
    ],
)
def test_cel_gos_strings_extension(text: str) -> None:
    assert run(text) is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("'hello'.charAt(-1) == ''", "index out of range: -1"),
        ("'tacocat'.substring(2, 1) == ''", "invalid substring range. start: 2, end: 1"),
        ("'hello mellow'.indexOf('ello', -1) == 1", "index out of range: -1"),
    ],
)
def test_string_index_errors_are_cel_gos(text: str, message: str) -> None:
    assert error_of(text) == message


@pytest.mark.parametrize(
    "text",
    [  # cost_test.go and cel-go's ext/sets.go and ext/lists.go examples
        "sets.contains([], [])",
        "sets.contains([1, 2, 3, 4], [2, 3])",
        "sets.contains([1, 2.0, 3u], [1.0, 2u, 3])",
        "sets.contains([[1], [2, 3]], [[2, 3.0]])",
        "!sets.contains([1], ['1', 1])",
        "!sets.contains([1], [1.1, 1u])",
        "sets.equivalent([1], [1u, 1.0])",
        "sets.equivalent([1, 2, 3], [3u, 2.0, 1])",
        "sets.intersects([1], [1.0, 2])",
        "!sets.intersects([], [1])",
        "[1, 2, 2, 3, 3, 3].distinct() == [1, 2, 3]",
        "[1, 'b', 2, 'b'].distinct() == [1, 'b', 2]",
        "[1, [2, [3, 4]]].flatten() == [1, 2, [3, 4]]",
        "[1, [2, [3, [4]]]].flatten(2) == [1, 2, 3, [4]]",
        "lists.range(5) == [0, 1, 2, 3, 4]",
        "[5, 3, 1, 2].reverse() == [2, 1, 3, 5]",
        "[1, 2, 3, 4].slice(1, 3) == [2, 3]",
        "['b', 'c', 'a'].sort() == ['a', 'b', 'c']",
    ],
)
def test_cel_gos_sets_and_lists_extensions(text: str) -> None:
    assert run(text) is True


def test_sorting_mixed_kinds_is_cel_gos_error() -> None:
    assert error_of("[1, 'b'].sort() == []") == "list elements must have the same type"


# kube's regex library ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [  # validation_test.go, self.str = 'abc 123 def 456'
        "object.spec.str.find('[0-9]+') == '123'",
        "object.spec.str.find('[0-9]+') != '456'",
        "object.spec.str.find('xyz') == ''",
        "object.spec.str.findAll('[0-9]+') == ['123', '456']",
        "object.spec.str.findAll('[0-9]+', 0) == []",
        "object.spec.str.findAll('[0-9]+', 1) == ['123']",
        "object.spec.str.findAll('[0-9]+', 3) == ['123', '456']",
        "object.spec.str.findAll('[0-9]+', -1) == ['123', '456']",
        "object.spec.str.findAll('xyz') == []",
    ],
)
def test_kubes_regex_library(text: str) -> None:
    assert run(text) is True


def test_find_all_skips_an_empty_match_right_after_a_match_as_go_does() -> None:
    assert run("'123 abc 456'.findAll('[0-9]*')") == ["123", "", "", "", "", "456"]


def test_a_bad_pattern_is_an_error() -> None:
    assert error_of("'x'.find(')') == ''").startswith("Illegal regex: error parsing regexp: ")


# kube's URL library ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [  # validation_test.go
        "url('/path').getScheme() == ''",
        "url('https://example.com/').getScheme() == 'https'",
        "url('https://example.com:80/').getHost() == 'example.com:80'",
        "url('https://example.com/').getHost() == 'example.com'",
        "url('https://[::1]:80/').getHost() == '[::1]:80'",
        "url('https://[::1]/').getHost() == '[::1]'",
        "url('/path').getHost() == ''",
        "url('https://example.com:80/').getHostname() == 'example.com'",
        "url('https://127.0.0.1/').getHostname() == '127.0.0.1'",
        "url('https://[::1]/').getHostname() == '::1'",
        "url('/path').getHostname() == ''",
        "url('https://example.com:80/').getPort() == '80'",
        "url('https://example.com/').getPort() == ''",
        "url('/path').getPort() == ''",
        "url('https://example.com/path').getEscapedPath() == '/path'",
        "url('https://example.com/with space/').getEscapedPath() == '/with%20space/'",
        "url('https://example.com').getEscapedPath() == ''",
        "url('https://example.com/path?k1=a&k2=b&k2=c').getQuery() == "
        "{ 'k1': ['a'], 'k2': ['b', 'c']}",
        "url('https://example.com/path?key with spaces=value with spaces').getQuery() == "
        "{ 'key with spaces': ['value with spaces']}",
        "url('https://example.com/path?').getQuery() == {}",
        "url('https://example.com/path').getQuery() == {}",
        "url(object.spec.url).getHost() == 'kubernetes.io:80'",
        "url(object.spec.url).getEscapedPath() == '/docs/home'",
        "isURL('https://user:pass@example.com:80/path?query=val#fragment')",
        "isURL('/path') == true",
        "isURL('https://a:b:c/') == false",
        "isURL('../relative-path') == false",
    ],
)
def test_kubes_url_library(text: str) -> None:
    assert run(text) is True


def test_an_invalid_url_is_gos_parse_error() -> None:
    assert error_of("url('https://a:b:c/') == url('/')") == (
        'URL parse error during conversion from string: parse "https://a:b:c/": '
        'invalid port ":c" after host'
    )


def test_a_url_result_is_its_text() -> None:
    assert run("url('https://example.com/x')") == "https://example.com/x"


# kube's quantity library -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # quantity_test.go
        ('isQuantity("20")', True),
        ('isQuantity("20M")', True),
        ('isQuantity("20Mi")', True),
        ('isQuantity("20Mo")', False),
        ('isQuantity("10Mm")', False),
        ('quantity("200M") == quantity("200M")', True),
        ('quantity("200M") == quantity("0.2G") && quantity("0.2G") == quantity("200M")', True),
        (
            'quantity("2M") == quantity("0.002G") && quantity("2000k") == quantity("2M") && '
            'quantity("0.002G") == quantity("2000k")',
            True,
        ),
        ('quantity("200M") == quantity("0.3G")', False),
        ('quantity("50M").isLessThan(quantity("50Mi"))', True),
        ('quantity("100M").isLessThan(quantity("50M"))', False),
        ('quantity("50Mi").isGreaterThan(quantity("50M"))', True),
        ('quantity("50M").isGreaterThan(quantity("100M"))', False),
        ('quantity("200M").compareTo(quantity("0.2G"))', 0),
        ('quantity("50M").compareTo(quantity("50Mi"))', -1),
        ('quantity("50Mi").compareTo(quantity("50M"))', 1),
        ('quantity("50k").add(quantity("20")) == quantity("50.02k")', True),
        ('quantity("50k").add(20).isLessThan(quantity("50020"))', False),
        ('quantity("50k").sub(quantity("20")) == quantity("49.98k")', True),
        ('quantity("50k").sub(20) == quantity("49980")', True),
        ('quantity("50k").add(20).sub(quantity("100k")).asInteger()', -49980),
        ('quantity("50k").add(20).sub(quantity("100k")).sub(-50000).asInteger()', 20),
        ('quantity("50k").asInteger()', 50000),
        ('quantity("9999999999999999999999999999999999999G").isInteger()', False),
        ('quantity("50").isInteger()', True),
        ('quantity("50.703k").asApproximateFloat()', 50703.0),
        (
            '[quantity("9999999999999999999999999999999999999")].all(x, '
            'x.add(quantity("1")).compareTo(x.add(quantity("2"))) == -1)',
            True,
        ),
        ('sign(quantity("-1Ki"))', -1),
        ('quantity("1Ki").sign()', 1),
        ("quantity(object.spec.memory) == quantity('1536Mi')", True),
    ],
)
def test_kubes_quantity_library(text: str, expected: Any) -> None:
    result = run(text)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [  # quantity_test.go
        (
            'quantity("10Mo")',
            "quantities must match the regular expression "
            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ),
        ('quantity("10Mm")', "unable to parse quantity's suffix"),
        (
            'quantity("9999999999999999999999999999999999999G").asInteger()',
            "cannot convert value to integer",
        ),
    ],
)
def test_quantity_errors_are_kubes(text: str, message: str) -> None:
    assert error_of(text) == message


def test_a_quantity_result_is_a_python_quantity_that_compares_by_value() -> None:
    result = run('quantity("12Mi")')
    assert isinstance(result, Quantity)
    assert result == parse("12Mi") == parse("12582912")
    assert str(result) == "12582912"
    assert parse("12Mi") < parse("13M")


@pytest.mark.parametrize(
    ("text", "value", "fmt"),
    [  # apimachinery's quantity_test.go TestQuantityParse
        ("0", "0", "DecimalSI"),
        ("0Ki", "0", "BinarySI"),
        ("8Ki", "8192", "BinarySI"),
        ("3Ei", "3458764513820540928", "BinarySI"),
        ("50k", "50000", "DecimalSI"),
        ("1E-3", "0.001", "DecimalExponent"),
        ("1.3E+6", "1300000", "DecimalExponent"),
        ("100.035k", "100035", "DecimalSI"),
        ("0.0005k", "0.5", "DecimalSI"),
        ("3.001n", "0.000000004", "DecimalSI"),
        ("0.0000000005", "0.000000001", "DecimalSI"),
        ("9Ei", "9223372036854775807", "BinarySI"),
        ("100.035Ki", "102435.84", "BinarySI"),
        ("0.000000000001Ki", "0.000000002", "DecimalSI"),
        (".001", "0.001", "DecimalSI"),
        ("1.G", "1000000000", "DecimalSI"),
        ("-0.5Mi", "-524288", "BinarySI"),
    ],
)
def test_quantities_parse_as_apimachinery_parses_them(text: str, value: str, fmt: str) -> None:
    parsed = parse(text)
    assert parsed == parse(value)
    assert parsed.format == fmt


@pytest.mark.parametrize(
    "text", ["1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01e-", " 1", "1 ", ""]
)
def test_apimachinerys_invalid_quantities_are_refused(text: str) -> None:
    with pytest.raises(QuantityError):
        parse(text)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("1.5Gi", "1536Mi"), ("1.5", "1500m"), ("2048Ki", "2Mi"), ("1e3", "1e3"), ("1000", "1k")],
)
def test_quantities_print_in_apimachinerys_canonical_form(text: str, canonical: str) -> None:
    assert str(parse(text)) == canonical


# kube's IP and CIDR libraries -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [  # ip_test.go
        ('isIP("192.168.0.1")', True),
        ('isIP("192.168.0.1.0")', False),
        ('ip.isCanonical("127.0.0.1")', True),
        ('ip("192.168.0.1").family()', 4),
        ('ip("0.0.0.0").isUnspecified()', True),
        ('ip("127.0.0.1").isUnspecified()', False),
        ('ip("127.0.0.1").isLoopback()', True),
        ('ip("1.2.3.4").isLoopback()', False),
        ('ip("224.0.0.1").isLinkLocalMulticast()', True),
        ('ip("224.0.1.1").isLinkLocalMulticast()', False),
        ('ip("169.254.169.254").isLinkLocalUnicast()', True),
        ('ip("192.168.0.1").isLinkLocalUnicast()', False),
        ('ip("192.168.0.1").isGlobalUnicast()', True),
        ('ip("255.255.255.255").isGlobalUnicast()', False),
        ('isIP("2001:db8::68")', True),
        ('isIP("2001:db8:::68")', False),
        ('ip.isCanonical("2001:db8::68")', True),
        ('ip.isCanonical("2001:DB8::68")', False),
        ('ip("2001:db8::68").family()', 6),
        ('ip("::").isUnspecified()', True),
        ('ip("::1").isLoopback()', True),
        ('ip("ff02::1").isLinkLocalMulticast()', True),
        ('ip("fd00::1").isLinkLocalMulticast()', False),
        ('ip("fe80::1").isLinkLocalUnicast()', True),
        ('ip("fd80::1").isLinkLocalUnicast()', False),
        ('ip("2001:db8::abcd").isGlobalUnicast()', True),
        ('ip("ff00::1").isGlobalUnicast()', False),
        # cidr_test.go
        ('cidr("192.168.0.0/24").containsIP(ip("192.168.0.1"))', True),
        ('cidr("192.168.0.0/24").containsIP(ip("192.168.1.1"))', False),
        ('cidr("192.168.0.0/24").containsIP("192.168.0.1")', True),
        ('cidr("192.168.0.0/24").containsCIDR(cidr("192.168.0.0/25"))', True),
        ('cidr("192.168.0.0/24").containsCIDR(cidr("192.168.0.1/32"))', True),
        ('cidr("192.168.0.0/24").containsCIDR(cidr("192.168.0.0/23"))', False),
        ('cidr("192.168.0.0/24").containsCIDR(cidr("192.169.0.1/32"))', False),
        ('cidr("192.168.0.0/24").containsCIDR("192.168.0.0/25")', True),
        ('cidr("192.168.0.0/24").prefixLength()', 24),
        ('cidr("2001:db8::/32").containsIP("2001:db8::1")', True),
        ('cidr("2001:db8::/32").containsIP("2001:dc8::1")', False),
        ('cidr("2001:db8::/32").containsCIDR("2001:db8::/31")', False),
        ('cidr("192.168.0.1/24").masked() == cidr("192.168.0.0/24")', True),
        ('cidr("2001:db8:1::/32").masked() == cidr("2001:db8::/32")', True),
        ('cidr("192.168.0.1/24").ip() == ip("192.168.0.1")', True),
    ],
)
def test_kubes_ip_and_cidr_libraries(text: str, expected: Any) -> None:
    assert run(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [  # ip_test.go and cidr_test.go
        (
            'ip("192.168.0.1.0")',
            'IP Address "192.168.0.1.0" parse error during conversion from string: '
            'ParseAddr("192.168.0.1.0"): IPv4 address too long',
        ),
        (
            'ip("2001:db8:::68")',
            'IP Address "2001:db8:::68" parse error during conversion from string: '
            'ParseAddr("2001:db8:::68"): each colon-separated field must have at least one '
            'digit (at ":68")',
        ),
        (
            'cidr("192.168.0.0/")',
            "network address parse error during conversion from string: network address parse "
            'error during conversion from string: netip.ParsePrefix("192.168.0.0/"): bad bits '
            'after slash: ""',
        ),
        ('ip("::ffff:1.2.3.4")', 'IPv4-mapped IPv6 address "::ffff:1.2.3.4" is not allowed'),
        ('ip("fe80::1%eth0")', 'IP address "fe80::1%eth0" with zone value is not allowed'),
    ],
)
def test_ip_and_cidr_errors_are_kubes(text: str, message: str) -> None:
    assert error_of(text) == message


def test_ip_and_cidr_results_are_python_addresses() -> None:
    assert run('ip("2001:db8::68")') == ipaddress.ip_address("2001:db8::68")
    assert run('cidr("192.168.0.1/24")') == ipaddress.ip_interface("192.168.0.1/24")


# Optional types and math -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("object.?spec.?missing.orValue(7)", 7),
        ("object.?spec.?priority.orValue(7)", 3),
        ("optional.of(1).hasValue()", True),
        ("optional.none().hasValue()", False),
        ("{'a': 1}.?b.orValue(3)", 3),
        ("[1, 2][?5].orValue(0)", 0),
        ("has(object.spec.missing)", False),
        ("math.greatest(1, 5)", 5),
        ("math.abs(-2)", 2),
    ],
)
def test_optional_types_and_math(text: str, expected: Any) -> None:
    assert run(text) == expected


def test_an_optional_result_is_its_value_or_none() -> None:
    assert run("object.?spec.?priority") == 3
    assert run("object.?spec.?missing") is None


# Composited variables -----------------------------------------------------------------------


def test_a_variable_read_twice_is_evaluated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    evaluations: list[str] = []
    original = Expression._variable_value

    def counted(self: Expression, ctx: Context) -> Any:
        evaluations.append(self.text)
        return original(self, ctx)

    monkeypatch.setattr(Expression, "_variable_value", counted)
    ctx = context({"name": expressions.compile("object.metadata.name")})
    # composition_test.go: "lazy evaluation, budget counts only once"
    assert run("variables.name == 'endpoints1' && variables.name == 'endpoints1' ", ctx) is True
    assert run("variables.name.size() > 0", ctx) is True
    assert evaluations == ["object.metadata.name"]


def test_a_failing_variable_nobody_reads_fails_nothing() -> None:
    ctx = context(
        {"broken": expressions.compile("object.spec.missing"), "fine": expressions.compile("1")}
    )
    assert run("variables.fine == 1", ctx) is True
    assert run("false && variables.broken == 1", ctx) is False


def test_a_failing_variable_fails_its_readers_in_kubes_words() -> None:
    # composition_test.go: "delayed eval error"
    count = expressions.compile("object.subsets[114514].addresses.size()")
    ctx = context({"count": count})
    assert error_of("variables.count == 810", ctx) == (
        'composited variable "count" fails to evaluate: index out of bounds: 114514'
    )
    assert error_of("variables.count > 0", ctx).startswith('composited variable "count"')


@pytest.mark.parametrize(
    ("variable", "text"),
    [  # composition_test.go
        ("object.metadata.name", "variables.name == 'endpoints1'"),
        ("true", "variables.name"),
        ("[1, 2, 3, 4]", "variables.name.sum() == 10"),
        ('{"foo": "bar"}', "variables.name['foo'].contains('bar')"),
    ],
)
def test_kubes_composition_cases(variable: str, text: str) -> None:
    assert run(text, context({"name": expressions.compile(variable)})) is True


def test_variables_read_earlier_variables_and_every_form_of_read() -> None:
    ctx = context(
        {
            "priority": expressions.compile("object.spec.priority"),
            "doubled": expressions.compile("variables.priority * 2"),
        }
    )
    assert run("variables.doubled", ctx) == 6
    assert run("has(variables.doubled) && !has(variables.nothing)", ctx) is True
    assert run("variables.?doubled.orValue(0) + variables['priority']", ctx) == 9
    assert error_of("variables.nothing == 1", ctx) == "no such key: nothing"


def test_reads_of_variables_are_typed_as_kube_types_them() -> None:
    variables = {
        "flag": expressions.compile("object.spec.priority > 1"),
        "message": expressions.compile("'too ' + 'big'"),
        "items": expressions.compile("[1, 2]"),
        "count": expressions.compile("variables.items.size()"),
    }
    assert expressions.compile("variables.flag").output_type == "dyn"
    assert expressions.compile("variables.flag").output_type_for(variables) == "bool"
    assert expressions.compile("variables.message").output_type_for(variables) == "string"
    assert expressions.compile("variables.count + 1").output_type_for(variables) == "int"
    assert run("variables.flag && variables.count == 2", context(variables)) is True
    mistyped = expressions.compile("variables.message + 1")
    with pytest.raises(CompileError, match=r"no matching overload for '_\+_' applied to "):
        mistyped.output_type_for(variables)
    assert error_of("variables.message + 1", context(variables)).startswith("compilation failed")


def test_only_reads_of_the_variables_variable_are_rewritten() -> None:
    obj = {"variables": {"name": "a field"}}
    ctx = context({"name": expressions.compile("'a variable'")}, obj=obj)
    assert run("object.variables.name + ' / ' + variables.name", ctx) == "a field / a variable"
    assert run("'variables.name' + \"variables.name\"", ctx) == "variables.namevariables.name"
    assert run("[1].map(v, variables.name)", ctx) == ["a variable"]


def test_timestamp_duration_and_optional_variables_keep_their_types() -> None:
    ctx = context(
        {
            "when": expressions.compile("timestamp(object.spec.when)"),
            "grace": expressions.compile("duration('90s')"),
            "maybe": expressions.compile("object.?spec.?missing"),
            "some": expressions.compile("object.?spec.?priority"),
        }
    )
    assert run("variables.when + variables.grace", ctx) == datetime.datetime(
        2024, 5, 6, 7, 9, 39, tzinfo=datetime.UTC
    )
    assert run("variables.when.getFullYear() == 2024", ctx) is True
    assert run("variables.maybe.orValue(-1) + variables.some.value()", ctx) == 2
    assert run("variables.maybe.hasValue()", ctx) is False


# The authorizer -------------------------------------------------------------------------


def test_the_authorizer_chain_asks_with_the_checks_arguments() -> None:
    authorizer = FakeAuthorizer({("get", "deployments")})
    ctx = context(authorizer=authorizer)
    text = (
        "authorizer.group('apps').resource('deployments').subresource('scale')"
        ".namespace('test').name('backend').check('get')"
    )
    assert run(f"{text}.allowed()", ctx) is True
    assert run(f"{text}.reason()", ctx) == "alice may"
    assert run(f"{text}.errored() || {text}.error() != ''", ctx) is False
    assert authorizer.calls == [
        {
            "group": "apps",
            "resource": "deployments",
            "subresource": "scale",
            "namespace": "test",
            "name": "backend",
            "verb": "get",
            "path": "",
            "user": "alice",
        }
    ]


def test_a_path_check_and_the_request_resource() -> None:
    authorizer = FakeAuthorizer({("get", "/healthz")})
    ctx = context(authorizer=authorizer)
    assert run("authorizer.path('/healthz').check('get').allowed()", ctx) is True
    assert run("authorizer.requestResource.check('delete').allowed()", ctx) is False
    assert authorizer.calls[0]["path"] == "/healthz"
    assert authorizer.calls[1] == {
        "group": "",
        "resource": "endpoints",
        "subresource": "",
        "namespace": "default",
        "name": "endpoints1",
        "verb": "delete",
        "path": "",
        "user": "alice",
    }


def test_a_service_accounts_authorizer_asks_for_that_user() -> None:
    authorizer = FakeAuthorizer({("list", "pods")})
    ctx = context(authorizer=authorizer)
    text = "authorizer.serviceAccount('default', 'builder').group('').resource('pods')"
    assert run(f"{text}.check('list').allowed()", ctx) is True
    assert authorizer.calls[0]["user"] == "system:serviceaccount:default:builder"
    invalid = "authorizer.serviceAccount('not@a#valid!namespace', 'x').path('/').check('get')"
    assert error_of(f"{invalid}.allowed()", ctx) == "Invalid service account namespace"


def test_the_authorizer_is_asked_only_when_a_check_is_evaluated() -> None:
    authorizer = FakeAuthorizer(set())
    ctx = context(authorizer=authorizer)
    expressions.compile("authorizer.group('').resource('pods').check('get').allowed()")
    assert run("true || authorizer.group('').resource('pods').check('get').allowed()", ctx)
    assert authorizer.calls == []


def test_an_authorizer_failure_is_an_errored_decision() -> None:
    def failing(**_: str) -> tuple[str, str]:
        raise RuntimeError("webhook unreachable")

    ctx = Context(
        object=OBJECT,
        oldObject=None,
        request=REQUEST,
        params=None,
        namespaceObject=None,
        authorizer=failing,
        variables={},
    )
    decision = "authorizer.group('').resource('pods').check('get')"
    assert run(f"{decision}.errored() && !{decision}.allowed()", ctx) is True
    assert run(f"{decision}.error()", ctx) == "webhook unreachable"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("authorizer.path('  ').check('get').allowed()", "path must not be empty"),
        (
            "authorizer.group('apps').resource('').check('get').allowed()",
            "resource must not be empty",
        ),
    ],
)
def test_empty_paths_and_resources_are_kubes_errors(text: str, message: str) -> None:
    assert error_of(text, context(authorizer=FakeAuthorizer(set()))) == message


# Sharing -------------------------------------------------------------------------------


def test_expressions_shared_by_threads_give_each_context_its_answer() -> None:
    expression = expressions.compile("object.spec.priority <= 5")
    failures: list[int] = []

    def work(offset: int) -> None:
        for i in range(300):
            priority = (i + offset) % 10
            obj = {"spec": {"priority": priority}}
            if expression.evaluate(context(obj=obj)) is not (priority <= 5):
                failures.append(priority)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
