import pytest

from t2fsnn import TTFSConfig


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"T": 0, "tau": 5}, "T=0"),
        ({"T": -3, "tau": 5}, "T=-3"),
        ({"T": 2.5, "tau": 5}, "T=2.5"),
        ({"T": 20, "tau": 0}, "tau=0"),
        ({"T": 20, "tau": -1.0}, "tau=-1.0"),
        ({"T": 20, "tau": [5, 0.0]}, "tau[1]=0.0"),
        ({"T": 20, "tau": float("nan")}, "tau=nan"),
        ({"T": 20, "tau": 5, "ef_start": 0}, "ef_start=0"),
        ({"T": 20, "tau": 5, "ef_start": 21}, "ef_start=21"),
        ({"T": 20, "tau": 5, "theta0": 0}, "theta0=0"),
        ({"T": 20, "tau": 5, "td": "a"}, "td="),
    ],
)
def test_invalid_values_name_the_value_and_range(kwargs, fragment):
    with pytest.raises(ValueError) as error:
        TTFSConfig(**kwargs)
    assert fragment in str(error.value)


def test_per_layer_values_and_latency():
    cfg = TTFSConfig(T=80, tau=20, td=0, ef_start=40)
    assert cfg.latency(16) == 680  # VGG-16: input + 15 hidden spiking layers
    assert TTFSConfig(T=80, tau=20).latency(16) == 1280
    per = TTFSConfig(T=10, tau=[1, 2, 3], td=[0, 1, 2])
    assert per.per_layer(3) == ((1.0, 2.0, 3.0), (0.0, 1.0, 2.0))
    with pytest.raises(ValueError, match="3 values but the network has 4"):
        per.per_layer(4)
    assert TTFSConfig(T=10, tau=2).per_layer(2) == ((2.0, 2.0), (0.0, 0.0))
