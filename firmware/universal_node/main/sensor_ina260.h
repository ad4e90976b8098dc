/* INA260 voltage/current sensor on the I2C master driver, address auto-detected. */
#pragma once

#include <stdint.h>

#include "esp_err.h"

esp_err_t ina260_init(int sda_gpio, int scl_gpio);
/* Bus voltage in millivolts and current in hundredths of a milliampere. */
esp_err_t ina260_read(int32_t *voltage_mv, int32_t *current_cma);
