"""The config model of ``provider: http_json`` and of every preset (the same model with the
preset's keys merged under the account's)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, cast

from pydantic import (
    BeforeValidator,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from ...accounts import AccountBase, RateLimit, problem_details
from .paths import PathStr
from .spec import AuthSpec, ErrorRule, PoolKey, PoolSpec, RequestSpec, TimeRef
from .templates import Loc, template_problems

DEFAULT_ENDPOINT = "balance"
_NAME = r"^[a-z][a-z0-9_]{0,62}$"


def _param_value(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


ParamName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
ParamValue = Annotated[str, BeforeValidator(_param_value)]


class HttpJsonAccount(AccountBase):
    """``provider: http_json`` (and every preset, a subclass with ``PRESET`` set).

    Validated with the registry as context (``{"providers": {name: account model}}``, as
    :mod:`exporter.config` does), ``provider_name`` may not be another provider's name."""

    PRESET: ClassVar[str | None] = None
    PRESET_DATA: ClassVar[Mapping[str, Any]] = {}

    provider: str
    provider_name: Annotated[str, Field(pattern=_NAME)]
    endpoint: Annotated[str, Field(pattern=_NAME)] = DEFAULT_ENDPOINT
    params: dict[ParamName, ParamValue] = Field(default_factory=dict)
    #: Params the account must give (a preset's account id...), each with what it is.
    required_params: dict[ParamName, Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        default_factory=dict
    )
    base_url_if_key_suffix: dict[
        Annotated[str, Field(min_length=1)], Annotated[str, Field(pattern=r"^https?://[^\s]+$")]
    ] = Field(default_factory=dict)
    request: RequestSpec
    auth: AuthSpec
    pools: Annotated[dict[PoolKey, PoolSpec], Field(min_length=1)]
    expiry: TimeRef | None = None
    cycle_start: TimeRef | None = None
    cycle_end: TimeRef | None = None
    error_message: PathStr | None = None
    error_when: tuple[ErrorRule, ...] = ()
    #: The API's documented limit per key: the key's rate limit unless the account's own
    #: ``rate_limit`` or ``providers.<name>.rate_limit`` says otherwise.
    documented_rate_limit: RateLimit | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _merge_preset_and_check(
        cls, data: Any, handler: ModelWrapValidatorHandler[HttpJsonAccount]
    ) -> HttpJsonAccount:
        if isinstance(data, dict) and cls.PRESET_DATA:
            data = merge_preset(cls.PRESET_DATA, data)
        problems = list(template_problems(data)) if isinstance(data, dict) else []
        if not problems:
            return handler(data)
        try:
            handler(data)
        except ValidationError as exc:
            raise _together(cls, exc.errors(include_url=False), problems) from None
        raise _together(cls, [], problems)

    def pool_names(self) -> tuple[str, ...] | None:
        """The keys of ``pools``, unless a pool is named by the answer (``name``)."""
        if any(spec.name is not None for spec in self.pools.values()):
            return None
        return tuple(self.pools)

    @field_validator("provider")
    @classmethod
    def _provider_matches(cls, value: str) -> str:
        expected = cls.PRESET or "http_json"
        if value != expected:
            raise ValueError(f'expected "{expected}"')
        return value

    @field_validator("provider_name")
    @classmethod
    def _not_a_builtin(cls, value: str, info: ValidationInfo) -> str:
        context = info.context if isinstance(info.context, dict) else {}
        providers: Mapping[str, type[AccountBase]] = context.get("providers", {})
        if value != cls.PRESET and (value in providers or value == "http_json"):
            model = providers.get(value)
            preset = isinstance(model, type) and issubclass(model, HttpJsonAccount)
            hint = f" (use provider: {value} and override its keys instead)" if preset else ""
            raise ValueError(f'"{value}" is the name of a built-in provider{hint}')
        return value

    @field_validator("auth")
    @classmethod
    def _auth_fits_request(cls, auth: AuthSpec, info: ValidationInfo) -> AuthSpec:
        request = info.data.get("request")
        if not isinstance(request, RequestSpec):
            return auth
        if auth.type == "body":
            if request.method != "POST":
                raise ValueError("auth type body needs request.method POST")
            node: Any = request.body or {}
            *parents, last = (auth.field or "").split(".")
            for part in parents:
                node = node.get(part, {}) if isinstance(node, dict) else None
                if not isinstance(node, dict):
                    raise ValueError(
                        f'field "{auth.field}" goes through a value of request.body '
                        "that is not an object"
                    )
            if last in node:
                raise ValueError(f'request.body already sets "{auth.field}", which carries the key')
        header = {"bearer": "Authorization", "basic": "Authorization", "header": auth.name}.get(
            auth.type
        )
        if header is not None and header.lower() in {h.lower() for h in request.headers}:
            raise ValueError(f"request.headers also sets {header}, which carries the key")
        return auth


def _together(
    model: type[HttpJsonAccount], errors: Iterable[Any], problems: list[tuple[Loc, str]]
) -> ValidationError:
    """One ValidationError with the model's own ``errors`` and the template ``problems``, each
    at its place, in the order of the account's keys."""
    details = [
        InitErrorDetails(
            type=PydanticCustomError(err["type"], err["msg"]), loc=err["loc"], input=err["input"]
        )
        for err in errors
    ]
    details += problem_details(problems)
    order = {name: i for i, name in enumerate(model.model_fields)}
    details.sort(key=lambda d: order.get(str(d["loc"][0]), len(order)) if d["loc"] else -1)
    return ValidationError.from_exception_data(model.__name__, details)


def merge_preset(preset: Mapping[str, Any], account: Mapping[str, Any]) -> dict[str, Any]:
    """The account's keys merged over its preset's (:func:`merge_patch`); an ``auth`` of
    another ``type`` replaces the preset's whole instead of merging with it."""
    base = copy.deepcopy(dict(preset))
    auth, preset_auth = account.get("auth"), base.get("auth")
    if (
        isinstance(auth, dict)
        and isinstance(preset_auth, dict)
        and "type" in auth
        and auth["type"] != preset_auth.get("type")
    ):
        del base["auth"]
    merged = merge_patch(base, dict(account))
    assert isinstance(merged, dict)
    return merged


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: maps merge recursively, ``None`` deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def preset_model(name: str, data: Mapping[str, Any]) -> type[HttpJsonAccount]:
    """The config model of ``provider: <name>``: http_json with ``data`` merged under."""
    model = type(
        f"{name.title().replace('_', '')}PresetAccount",
        (HttpJsonAccount,),
        {
            "PRESET": name,
            "PRESET_DATA": data,
            "__module__": __name__,
            # Validation schema built when a config first uses the preset, not at import
            # (six presets cost the exporter's start-up ~25 ms otherwise).
            "model_config": {**HttpJsonAccount.model_config, "defer_build": True},
        },
    )
    return cast(type[HttpJsonAccount], model)
