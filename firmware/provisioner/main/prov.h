/* Provisioner: provisions devices whose UUID starts with 0xDD 0xDD (addresses from 0x0005 up),
 * then gives each the application key and binds it to the vendor server and client models.
 * The nodes subscribe their server to the group 0xC000 themselves. */
#pragma once

#include "esp_err.h"

esp_err_t prov_init(void);
