import pytest

from generation.params import GenerationParams, InvalidParams, derive_seed


def test_defaults_are_valid_and_round_trip_through_a_dict():
    params = GenerationParams()
    assert GenerationParams.from_dict(params.to_dict()) == params
    assert params.to_dict() == {
        "temperature": 0.7,
        "top_k": 50,
        "top_p": 0.95,
        "repetition_penalty": 1.1,
        "max_new_tokens": 160,
        "candidates": 2,
        "best_of": 6,
        "seed": 1234,
        "do_sample": True,
    }


def test_strings_from_forms_and_the_cli_are_coerced():
    params = GenerationParams.from_dict(
        {
            "temperature": "0.9",
            "top_k": " 40 ",
            "top_p": "1",
            "repetition_penalty": "1.0",
            "max_new_tokens": "64",
            "candidates": "3.0",
            "seed": "7",
            "do_sample": "true",
        }
    )
    assert params == GenerationParams(
        temperature=0.9, top_k=40, top_p=1.0, repetition_penalty=1.0, max_new_tokens=64,
        candidates=3, seed=7, do_sample=True,
    )
    assert isinstance(params.temperature, float) and isinstance(params.candidates, int)


@pytest.mark.parametrize(
    "value, expected", [("off", False), ("0", False), ("Yes", True), (1, True)]
)
def test_booleans_accept_the_usual_spellings(value, expected):
    assert GenerationParams.from_dict({"do_sample": value, "temperature": 1}).do_sample is expected


def test_blank_values_fall_back_to_defaults():
    params = GenerationParams.from_dict({"temperature": "", "top_k": None})
    assert params.temperature == 0.7 and params.top_k == 50


def test_unknown_keys_are_rejected_with_their_name():
    with pytest.raises(InvalidParams) as info:
        GenerationParams.from_dict({"temprature": "0.7"})
    assert info.value.field == "temprature"
    assert "unknown parameter" in info.value.message


def test_zero_temperature_while_sampling_names_the_field():
    with pytest.raises(InvalidParams) as info:
        GenerationParams.from_dict({"temperature": "0"})
    assert str(info.value) == "temperature: must be > 0 when sampling"
    assert info.value.field == "temperature"
    assert info.value.message == "must be > 0 when sampling"
    assert isinstance(info.value, ValueError)


def test_zero_temperature_is_fine_for_greedy_decoding():
    assert GenerationParams.from_dict({"temperature": 0, "do_sample": "false"}).temperature == 0.0


@pytest.mark.parametrize(
    "field, value",
    [
        ("temperature", "5.5"),
        ("temperature", "nan"),
        ("top_p", "0"),
        ("top_p", "1.01"),
        ("top_k", "-1"),
        ("candidates", "0"),
        ("candidates", "9"),
        ("max_new_tokens", "0"),
        ("max_new_tokens", "2049"),
        ("repetition_penalty", "0.9"),
        ("repetition_penalty", "3.5"),
        ("seed", "-1"),
        ("seed", str(2**32)),
    ],
)
def test_out_of_range_values_are_refused_with_a_field_level_error(field, value):
    with pytest.raises(InvalidParams) as info:
        GenerationParams.from_dict({field: value})
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("temperature", "warm", "must be a number"),
        ("top_k", "1.5", "must be a whole number"),
        ("candidates", True, "must be a whole number"),
        ("do_sample", "maybe", "must be true or false"),
    ],
)
def test_values_that_cannot_be_coerced_say_why(field, value, message):
    with pytest.raises(InvalidParams) as info:
        GenerationParams.from_dict({field: value})
    assert (info.value.field, info.value.message) == (field, message)


def test_all_errors_are_collected_for_forms():
    with pytest.raises(InvalidParams) as info:
        GenerationParams.from_dict({"top_p": "2", "candidates": "0", "seed": "x"})
    assert set(info.value.errors) == {"top_p", "candidates", "seed"}


def test_direct_construction_is_validated_too():
    with pytest.raises(InvalidParams, match="top_k"):
        GenerationParams(top_k=-5)
    with pytest.raises(InvalidParams, match="must be of type int"):
        GenerationParams(candidates="2")


def test_derived_seeds_are_stable_distinct_and_in_range():
    a = derive_seed(1234, "SKU-1", "description")
    assert a == derive_seed(1234, "SKU-1", "description")
    assert a != derive_seed(1234, "SKU-2", "description")
    assert a != derive_seed(1235, "SKU-1", "description")
    assert 0 <= a < 2**32
