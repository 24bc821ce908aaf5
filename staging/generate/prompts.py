"""Background themes per product category, from an editable YAML file.

Taboola's production pipeline (Czapp et al. 2024) stages each product with one of a *few
predefined prompts per item category* (at most three in their A/B tests) and lets a contextual
bandit choose among them. The themes are therefore data, not code: marketers edit
``staging/assets/prompts.yaml`` (or their own copy) and the app picks the change up on the next
call.

Why pydantic: a typo in a hand-edited file (``promt:``, a ``{prodcut}`` placeholder, two themes
with the same name, which would merge their bandit statistics) must fail when the file is
loaded, with its place in the file, not later as an odd image or a ``KeyError`` in a request.

Which file is used (:func:`library_path`): an explicit path; else ``<state_dir>/prompts.yaml``
when the user has put one there; else the bundled ``staging/assets/prompts.yaml``, package data
read with :mod:`importlib.resources`, so a wheel install has it too.

Category names from catalogs are free text ("Three-seat sofa", "Chest of 4 drawers"):
:meth:`PromptLibrary.resolve` maps them to a library category through the aliases, and falls
back to ``default`` so an unknown category still gets a sensible background.
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from staging.errors import StagingError


def _bundled() -> Path:
    """The package's own ``assets/prompts.yaml``, wherever ``staging`` is installed."""
    resource = resources.files("staging") / "assets" / "prompts.yaml"
    # A package on the file system (a checkout, an editable or a wheel install, the Docker
    # image) gives a real path, which the engine also needs for the file's version stamp; a
    # zipped one (unsupported) gives a path that does not exist, reported when it is read.
    return resource if isinstance(resource, Path) else Path(str(resource))


BUNDLED = _bundled()
"""The themes shipped with the package (``staging/assets/prompts.yaml``, package data)."""
USER_FILE = "prompts.yaml"
"""Name of the user's own copy inside the state directory; it wins over :data:`BUNDLED`."""
DEFAULT_CATEGORY = "default"
PLACEHOLDERS = frozenset({"product"})
"""Placeholders a prompt may use; anything else is a typo caught at load time."""
MAX_THEMES = 10

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_CATEGORY = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # also a file name (one bandit state per category)
_SPACES = re.compile(r"\s+")
_SEPARATORS = re.compile(r"[_/,;:()\-]+")
_DIGITS = re.compile(r"\b\d+\w*\b")
_PHRASE_BREAK = re.compile(r"\s(?:with|of|for|in)\s")
_ARTICLE = re.compile(r"\b([Aa])(?= \{product\})")


def normalize_name(text: str) -> str:
    """Lower-case words separated by single spaces: ``"Chest_of 4-drawers"`` ->
    ``"chest of drawers"``. Digits go (sizes and counts say nothing about the scene)."""
    text = _SEPARATORS.sub(" ", str(text).lower())
    return _SPACES.sub(" ", _DIGITS.sub(" ", text)).strip()


def _clean(text: str) -> str:
    """One line, single spaces, no stray commas: YAML folding and empty fills leave both."""
    text = _SPACES.sub(" ", text).strip()
    text = re.sub(r"\s+,", ",", text)
    text = re.sub(r",(\s*,)+", ",", text)
    return text.strip(" ,")


def _join(*parts: str | None) -> str:
    return ", ".join(p for p in (_clean(x or "") for x in parts) if p)


class Theme(BaseModel):
    """One background theme: what the bandit chooses between."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME, description="Identifier, unique within its category.")
    prompt: str = Field(min_length=3, description="The scene, for Stable Diffusion; {product}.")
    negative: str = Field("", description="Added to the library's shared negative prompt.")
    style: str | None = Field(None, description="Replaces the library's shared style.")

    @field_validator("prompt", "negative", "style", mode="before")
    @classmethod
    def _yaml_mapping(cls, value: object) -> object:
        if isinstance(value, dict):  # YAML reads "prompt: {product} in a loft" as a mapping
            raise ValueError(
                "is a mapping, not text: a value starting with '{' must be quoted in YAML; "
                'quote the prompt (prompt: "{product} in a loft")'
            )
        return value

    @field_validator("prompt", "negative", "style")
    @classmethod
    def _check_placeholders(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
        except ValueError as exc:  # "Single '}' encountered" and friends
            raise ValueError(f"{exc} (write {{{{ and }}}} for literal braces)") from None
        unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
        if unknown:
            allowed = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS))
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}; allowed: {allowed}")
        return _clean(value)

    def fill(
        self,
        product: str,
        colour: str | None = None,
        extra: str | None = None,
        style: str | None = None,
    ) -> str:
        """``scene, extra, style``: the scene with ``{product}`` filled (``"black armchair"``),
        then ``extra`` (the personalisation fragment), then the photographic style (this
        theme's, else ``style``). The style goes last because it matters least when the
        text encoder's 77 tokens run out."""
        noun = _clean(f"{(colour or '').lower()} {product}")
        # "a {product}" -> "an oak chair": the article must agree with the filled-in noun
        vowel = noun[:1].lower() in "aeio"
        template = _ARTICLE.sub(lambda m: m.group(1) + ("n" if vowel else ""), self.prompt)
        finish = self.style if self.style is not None else style
        return _join(template.format(product=noun), extra, finish)


class Category(BaseModel):
    """The themes of one category and the catalog names that mean it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product: str = Field("product", min_length=1, description="Noun for {product} by default.")
    aliases: list[str] = Field(default_factory=list)
    themes: list[Theme] = Field(min_length=1, max_length=MAX_THEMES)

    @field_validator("aliases")
    @classmethod
    def _normalize_aliases(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for alias in value:
            norm = normalize_name(alias)
            if not norm:
                raise ValueError(f"alias {alias!r} has no words")
            if norm not in out:
                out.append(norm)
        return out

    @field_validator("themes")
    @classmethod
    def _unique_themes(cls, value: list[Theme]) -> list[Theme]:
        seen: set[str] = set()
        for theme in value:
            if theme.name in seen:  # two arms with one name would share bandit statistics
                raise ValueError(f"theme name {theme.name!r} is used twice")
            seen.add(theme.name)
        return value

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.themes]


class PromptLibrary(BaseModel):
    """Every category's themes, the shared negative prompt and the interest fragments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    negative: str = ""
    style: str = ""
    interests: dict[str, str] = Field(default_factory=dict)
    categories: dict[str, Category]
    _source: str = PrivateAttr("<data>")

    @property
    def source(self) -> str:
        """The file the library was loaded from (for messages)."""
        return self._source

    @field_validator("negative", "style")
    @classmethod
    def _clean_negative(cls, value: str) -> str:
        return _clean(value)

    @field_validator("interests")
    @classmethod
    def _normalize_interests(cls, value: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, fragment in value.items():
            norm = normalize_name(key)
            if not norm or not _clean(fragment):
                raise ValueError(f"interest {key!r} needs a name and a fragment")
            out[norm] = _clean(fragment)
        return out

    @field_validator("categories")
    @classmethod
    def _check_categories(cls, value: dict[str, Category]) -> dict[str, Category]:
        bad = [k for k in value if not re.match(_CATEGORY, k)]
        if bad:
            raise ValueError(
                f"category name {bad[0]!r} must be lower-case letters, digits, _ or - "
                "(it also names the bandit's state file)"
            )
        if DEFAULT_CATEGORY not in value:
            raise ValueError(
                f"a {DEFAULT_CATEGORY!r} category is required: products of unknown "
                "categories are staged with its themes"
            )
        return value

    @model_validator(mode="after")
    def _unique_aliases(self) -> PromptLibrary:
        owner: dict[str, str] = {}
        for key, category in self.categories.items():
            for alias in [normalize_name(key), *category.aliases]:
                if owner.setdefault(alias, key) != key:
                    raise ValueError(
                        f"alias {alias!r} belongs to both {owner[alias]!r} and {key!r}"
                    )
        return self

    # -- lookup ---------------------------------------------------------------------------------
    @property
    def category_names(self) -> list[str]:
        return list(self.categories)

    def _alias_table(self) -> dict[str, str]:
        table = {}
        for key, category in self.categories.items():
            table[normalize_name(key)] = key
            for alias in category.aliases:
                table[alias] = key
        return table

    def match(self, category: str | None) -> str | None:
        """The library category ``category`` means, or None when nothing matches.

        Tried in order: the whole name (``"tv bench"``), then the words of its head phrase
        from the last (English compounds end in their head noun: a *table lamp* is a lamp;
        ``"Chest of 4 drawers"`` has head phrase ``"chest"``), then the remaining words, each
        also without a plural ``s``.
        """
        if category is None:
            return None
        name = normalize_name(category)
        if not name:
            return None
        table = self._alias_table()
        if name in table:
            return table[name]
        head, *rest = _PHRASE_BREAK.split(name)
        head_words = head.split()
        rest_words = " ".join(rest).split()
        # two-word aliases inside the head phrase ("coffee table" in "round coffee table")
        pairs = [" ".join(head_words[i : i + 2]) for i in range(len(head_words) - 1)]
        for word in [*reversed(pairs), *reversed(head_words), *reversed(rest_words)]:
            for candidate in (word, word[:-1] if word.endswith("s") else None):
                if candidate and candidate in table:
                    return table[candidate]
        return None

    def resolve(self, category: str | None, strict: bool = False) -> str:
        """The library category for ``category``; unknown ones fall back to ``default``.

        With ``strict=True`` an unknown category is a :class:`StagingError` listing the known
        ones (for tools that must not silently stage a lamp as "default").
        """
        found = self.match(category)
        if found is not None:
            return found
        if strict:
            raise StagingError(
                f"Unknown product category {category!r}. Known categories: "
                f"{', '.join(self.categories)} (or one of their aliases in {self.source})."
            )
        return DEFAULT_CATEGORY

    def category(self, category: str | None) -> Category:
        return self.categories[self.resolve(category)]

    def themes(self, category: str | None) -> list[Theme]:
        """The themes for ``category`` (resolved; unknown -> ``default``)."""
        return list(self.category(category).themes)

    def theme(self, category: str | None, name: str | int) -> Theme:
        """Theme ``name`` (or its index) of ``category``; a :class:`StagingError` if absent."""
        key = self.resolve(category)
        themes = self.categories[key].themes
        if isinstance(name, int) and not isinstance(name, bool):
            if 0 <= name < len(themes):
                return themes[name]
        else:
            for theme in themes:
                if theme.name == name:
                    return theme
        raise StagingError(
            f"Category {key!r} has no theme {name!r}; its themes are "
            f"{', '.join(t.name for t in themes)}."
        )

    def fill(
        self,
        category: str | None,
        theme: str | int,
        product: str | None = None,
        colour: str | None = None,
        extra: str | None = None,
    ) -> tuple[str, str]:
        """``(prompt, negative_prompt)`` for a theme: ``{product}`` filled with ``colour`` +
        ``product`` (default: the category's noun), ``extra`` and the style appended (see
        :meth:`Theme.fill`), and the theme's negative added to the shared one."""
        key = self.resolve(category)
        chosen = self.theme(key, theme)
        noun = product.strip() if product and product.strip() else self.categories[key].product
        prompt = chosen.fill(noun, colour, extra, self.style)
        return prompt, _join(self.negative, chosen.negative)


# -- files --------------------------------------------------------------------------------------
def library_path(
    path: str | os.PathLike | None = None, state_dir: str | os.PathLike | None = None
) -> Path:
    """Which prompts file to read: ``path``; else ``<state_dir>/prompts.yaml`` if it exists;
    else the bundled :data:`BUNDLED`."""
    if path is not None:
        return Path(os.fspath(path)).expanduser()
    if state_dir is not None:
        user = Path(os.fspath(state_dir)).expanduser() / USER_FILE
        if user.is_file():
            return user
    return BUNDLED


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors()[:8]:
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    more = len(exc.errors()) - 8
    if more > 0:
        lines.append(f"  ... and {more} more")
    return "\n".join(lines)


def parse_library(data: object, source: str = "<data>") -> PromptLibrary:
    """Validate already-parsed YAML/JSON data; errors name the place in the file."""
    if not isinstance(data, dict):
        raise StagingError(
            f"{source} must be a mapping with 'version', 'negative', 'interests' and "
            f"'categories', not {type(data).__name__}."
        )
    try:
        library = PromptLibrary.model_validate(data)
    except ValidationError as exc:
        raise StagingError(f"Invalid prompts file {source}:\n{_format_errors(exc)}") from None
    library._source = source
    return library


def load_library(path: str | os.PathLike | None = None) -> PromptLibrary:
    """Read and validate a prompts YAML file (default: the bundled one).

    Raises :class:`StagingError` for a missing file, bad YAML (with line and column) or a
    schema error (with the path inside the file, e.g. ``categories.chair.themes.1.prompt``).
    """
    import yaml

    file = Path(os.fspath(path)).expanduser() if path is not None else BUNDLED
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = (
            " (the bundled themes are package data of staging: reinstall product-staging-studio)"
            if file == BUNDLED
            else ""
        )
        raise StagingError(f"Prompts file {file} does not exist{hint}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise StagingError(f"Cannot read prompts file {file}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        lines = text.splitlines()
        if mark and mark.line < len(lines) and re.search(r":\s*\{", lines[mark.line]):
            problem += " (a value starting with '{' must be quoted: prompt: \"{product} ...\")"
        raise StagingError(f"Prompts file {file} is not valid YAML{where}: {problem}") from None
    return parse_library(data, str(file))


def theme_names(library: PromptLibrary, categories: Iterable[str] | None = None) -> dict:
    """``{category: [theme names]}`` for display (all categories by default)."""
    keys = list(categories) if categories is not None else library.category_names
    return {k: library.categories[library.resolve(k)].names for k in keys}
