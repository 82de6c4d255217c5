"""The shape of a policy file: its document against the file's JSON Schema (the built-in one
or the repository's own). A predicate compiled once decides a valid document; jsonschema is
imported only to find and word what is wrong with a refused one (`policy_checks/words/`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policy_checks.fastschema import OutsideSubset, Predicate, compile_predicate
from policy_checks.jsonpath import Path as JsonPath
from policy_checks.jsonpath import format_path
from policy_checks.loading import Document
from policy_checks.model import Finding
from policy_checks.words import (
    misspelt_key,
    misspelt_required,
    name_in_words,
    type_hint,
    unexpected_keys,
    unknown_keys,
    value_hint,
)

if TYPE_CHECKING:
    import jsonschema


class Schema:
    """One file's schema: a fast predicate when the schema compiles, else one that refuses
    everything; jsonschema's validator, made when first needed, decides a refused document."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        try:
            self.conforms: Predicate = compile_predicate(schema, "schema.json")
        except OutsideSubset:  # a repository's schema beyond the subset: jsonschema for all
            self.conforms = _refuse
        self._validator: jsonschema.protocols.Validator | None = None

    @property
    def validator(self) -> jsonschema.protocols.Validator:
        if self._validator is None:
            import jsonschema
            from jsonschema.validators import validator_for

            cls = validator_for(self.schema, default=jsonschema.Draft202012Validator)
            self._validator = cls(self.schema)
        return self._validator


def _refuse(value: Any) -> bool:
    return False


def shape_findings(
    document: Document, schema: Schema, file: str, version_dir: str | None = None
) -> list[Finding]:
    """The findings of a document against its file's schema: none when the fast predicate
    accepts it; otherwise jsonschema's errors, each the most relevant cause, in the author's
    words and at the line of what it is about."""
    if schema.conforms(document.value):
        return []
    from jsonschema.exceptions import best_match

    # best_match descends into anyOf/oneOf contexts to the most relevant cause.
    errors = [best_match([e]) or e for e in schema.validator.iter_errors(document.value)]
    # A misspelt required key is one mistake: the required key is missing and the misspelt
    # one is unknown. One finding, at the misspelt key; the other error is left out.
    pairs = [misspelt_required(error) for error in errors]
    misspelt = {
        (tuple(error.absolute_path), pair[0])
        for error, pair in zip(errors, pairs, strict=True)
        if pair is not None
    }
    findings = []
    for error, pair in zip(errors, pairs, strict=True):
        path: JsonPath = tuple(error.absolute_path)
        if pair is not None:
            findings.append(
                Finding(
                    file,
                    misspelt_key(*pair),
                    document.source.line((*path, pair[0])),
                    format_path((*path, pair[0])),
                    rule="schema",
                )
            )
            continue
        message, hint = error.message, None
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            extra = [k for k in unknown_keys(error) if (path, k) not in misspelt]
            if not extra:
                continue
            # Point at the offending key rather than at the object that holds it.
            message, hint = unexpected_keys(error, extra)
            path = (*path, extra[0])
        words = name_in_words(error, path)
        if words is not None:
            message, hint = words
        findings.append(
            Finding(
                file,
                message,
                document.source.line(path),
                format_path(path),
                hint or type_hint(error, document.source, path, version_dir) or value_hint(error),
                "schema",
            )
        )
    return findings
