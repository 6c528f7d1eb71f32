"""Turn a file's bytes into text and a tree, or into a diagnostic that says why not."""

from __future__ import annotations

import ast
import io
import tokenize
import warnings

from backend_audit.findings import Diagnostic


class SourceProblem(Exception):
    def __init__(self, kind: str, message: str, line: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.line = line

    def diagnostic(self, path: str) -> Diagnostic:
        return Diagnostic(path=path, kind=self.kind, message=self.message, line=self.line)


def decode_source(data: bytes, python: bool) -> str:
    """Decode text, honouring a PEP 263 coding cookie (and a UTF-8 BOM) for Python files."""
    if b"\0" in data[:8192]:
        raise SourceProblem("binary-file", "binary file (contains NUL bytes); skipped")
    encoding = "utf-8"
    if python:
        try:
            encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        except SyntaxError as exc:
            if "invalid or missing encoding declaration" not in str(exc):
                raise SourceProblem("decode-error", f"bad encoding declaration: {exc}") from None
            encoding = "utf-8"  # no cookie and not UTF-8 in the first lines: say where below
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        where = ""
        if isinstance(exc, UnicodeDecodeError):
            line_no = data.count(b"\n", 0, exc.start) + 1
            where = f" at line {line_no}"
        raise SourceProblem("decode-error", f"cannot decode as {encoding}{where}; declare the encoding "
                                            "with a PEP 263 coding comment or save the file as UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


#: the message of a file whose expressions nest deeper than the parser or the summary can follow
TOO_COMPLEX = "expressions nested too deeply to analyse (e.g. thousands of chained operators); skipped"


def parse_python(text: str, path: str) -> ast.Module:
    """`ast.parse`, or a diagnostic telling a real syntax error from syntax newer than this Python."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes in analysed code
            return ast.parse(text, filename=path)
    except SyntaxError as exc:
        line = exc.lineno
        if _parses_with_newer_grammar(text):
            import sys

            raise SourceProblem(
                "needs-newer-python",
                f"uses syntax that Python {sys.version_info.major}.{sys.version_info.minor} cannot parse "
                f"(line {line}: {exc.msg}); run backend-audit with a newer Python to analyse it",
                line,
            ) from None
        raise SourceProblem("syntax-error", f"syntax error at line {line}: {exc.msg}", line) from None
    except RecursionError:
        raise SourceProblem("too-complex", TOO_COMPLEX) from None
    except (ValueError, MemoryError) as exc:
        raise SourceProblem("syntax-error", f"cannot parse: {exc}") from None


def _parses_with_newer_grammar(text: str) -> bool:
    """Second opinion from libcst's native parser, which knows newer grammar than this interpreter."""
    try:
        import libcst
    except ImportError:  # pragma: no cover - libcst is a dependency
        return False
    for version in ("3.14", "3.13", "3.12"):
        try:
            libcst.parse_module(text, config=libcst.PartialParserConfig(python_version=version))
            return True
        except ValueError:
            continue  # this libcst does not know that version
        except Exception:
            return False
    return False
