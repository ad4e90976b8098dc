"""The electrical side of a universal node: supply, PWM load and the INA260 it reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import random

VOLTAGE_LSB = 0.00125  # V, INA260 bus voltage
CURRENT_LSB = 0.00125  # A, INA260 current


@dataclass(slots=True)
class Load:
    """A supply with internal resistance feeding a resistive load through the PWM switch.

    The INA260 averages over many PWM periods, so the current it reports is the
    duty-weighted mean: I = duty * Vs / (R_load + R_source), V = Vs - I * R_source.
    """

    supply_voltage: float = 12.0
    load_resistance: float = 24.0
    source_resistance: float = 0.1
    voltage_noise: float = 0.004  # V, standard deviation
    current_noise: float = 0.0006  # A, standard deviation

    def measure(self, duty: int, rng: random.Random) -> tuple[int, int]:
        """Return one INA260 sample at a duty in %: (millivolts, hundredths of a mA).

        The converter counts in LSBs of 1.25 mV and 1.25 mA; the firmware keeps
        whole millivolts (truncated) and exact hundredths of a milliampere.
        """
        amps = (
            duty
            / 100
            * self.supply_voltage
            / (self.load_resistance + self.source_resistance)
        )
        volts = self.supply_voltage - amps * self.source_resistance
        volt_counts = max(
            0, round((volts + rng.gauss(0.0, self.voltage_noise)) / VOLTAGE_LSB)
        )
        amp_counts = round((amps + rng.gauss(0.0, self.current_noise)) / CURRENT_LSB)
        return volt_counts * 125 // 100, amp_counts * 125
