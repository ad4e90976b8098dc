/* PWM load driver: LEDC, 1 kHz, 13-bit, output optionally inverted. */
#pragma once

#include <stdint.h>

#include "esp_err.h"

/* Configures the channel with the load off. */
esp_err_t pwm_load_init(int gpio);
/* Duty in percent, 0..100. */
esp_err_t pwm_load_set(uint8_t percent);
