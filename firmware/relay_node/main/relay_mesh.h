/* Relay node mesh: config server with relay enabled and the vendor server (0x0001), which
 * answers INFO (ROLE:R) and ignores every other payload. */
#pragma once

#include "esp_err.h"

esp_err_t relay_mesh_init(void);
