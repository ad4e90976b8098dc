#include "ota_glue.h"

#include <string.h>

#include "esp_app_desc.h"
#include "esp_log.h"
#include "esp_ota_ops.h"

static const char *TAG = "OTA";

static const esp_partition_t *s_part;
static esp_ota_handle_t s_handle;

static bool ota_begin(void *ctx, uint32_t size)
{
    (void)ctx;
    s_part = esp_ota_get_next_update_partition(NULL);
    if (s_part == NULL) {
        ESP_LOGE(TAG, "no OTA slot");
        return false;
    }
    /* erases `size` bytes of the slot now (blocks this task for a few seconds per MB); refused
     * while the running image is still PENDING_VERIFY (ESP_ERR_OTA_ROLLBACK_INVALID_STATE) */
    esp_err_t err = esp_ota_begin(s_part, size, &s_handle);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_begin(%s, %u): %s", s_part->label, (unsigned)size,
                 esp_err_to_name(err));
        return false;
    }
    ESP_LOGI(TAG, "receiving %u bytes into %s", (unsigned)size, s_part->label);
    return true;
}

static bool ota_write(void *ctx, uint32_t offset, const uint8_t *data, size_t len)
{
    (void)ctx;
    esp_err_t err = esp_ota_write_with_offset(s_handle, data, len, offset);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "write at %u: %s", (unsigned)offset, esp_err_to_name(err));
    }
    return err == ESP_OK;
}

static dcp_ota_finish_t ota_finish(void *ctx, const char *version)
{
    (void)ctx;
    /* esp_ota_end frees the handle whatever it returns; it checks the image (and, with
     * CONFIG_SECURE_SIGNED_ON_UPDATE_NO_SECURE_BOOT, its signature against the running app's key) */
    esp_err_t err = esp_ota_end(s_handle);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_end: %s", esp_err_to_name(err));
        return err == ESP_ERR_OTA_VALIDATE_FAILED ? DCP_OTA_FINISH_INVALID_IMAGE
                                                  : DCP_OTA_FINISH_FLASH;
    }
    esp_app_desc_t desc;
    if (esp_ota_get_partition_description(s_part, &desc) != ESP_OK) {
        return DCP_OTA_FINISH_INVALID_IMAGE;
    }
    /* the same project (role) as the running image, and the version the client declared */
    if (strncmp(desc.project_name, esp_app_get_description()->project_name,
                sizeof(desc.project_name)) != 0) {
        ESP_LOGE(TAG, "image is project %.32s", desc.project_name);
        return DCP_OTA_FINISH_INVALID_IMAGE;
    }
    if (strncmp(desc.version, version, sizeof(desc.version)) != 0) {
        ESP_LOGE(TAG, "image is version %.32s, declared %s", desc.version, version);
        return DCP_OTA_FINISH_VERSION;
    }
    err = esp_ota_set_boot_partition(s_part);
    if (err != ESP_OK) {
        ESP_LOGE(TAG, "esp_ota_set_boot_partition: %s", esp_err_to_name(err));
        return DCP_OTA_FINISH_FLASH;
    }
    ESP_LOGI(TAG, "version %s set to boot from %s", version, s_part->label);
    return DCP_OTA_FINISH_OK;
}

static void ota_abort(void *ctx)
{
    (void)ctx;
    esp_err_t err = esp_ota_abort(s_handle);
    if (err != ESP_OK) {
        ESP_LOGW(TAG, "esp_ota_abort: %s", esp_err_to_name(err));
    }
}

static const dcp_ota_io_t s_io = {
    .begin = ota_begin,
    .write = ota_write,
    .finish = ota_finish,
    .abort = ota_abort,
    .ctx = NULL,
};

const dcp_ota_io_t *ota_glue_io(void)
{
    return &s_io;
}

uint32_t ota_glue_slot_size(void)
{
    const esp_partition_t *p = esp_ota_get_next_update_partition(NULL);
    return p != NULL ? p->size : 0u;
}

bool ota_glue_pending_verify(void)
{
    esp_ota_img_states_t state;
    const esp_partition_t *running = esp_ota_get_running_partition();
    return running != NULL && esp_ota_get_state_partition(running, &state) == ESP_OK &&
           state == ESP_OTA_IMG_PENDING_VERIFY;
}

void ota_glue_confirm(bool passed)
{
    if (passed) {
        esp_err_t err = esp_ota_mark_app_valid_cancel_rollback();
        ESP_LOGI(TAG, "self-test passed: image kept (%s)", esp_err_to_name(err));
        return;
    }
    ESP_LOGE(TAG, "self-test failed: rolling back");
    esp_err_t err = esp_ota_mark_app_invalid_rollback_and_reboot(); /* returns only on failure */
    ESP_LOGE(TAG, "rollback impossible (%s): keeping this image", esp_err_to_name(err));
    esp_ota_mark_app_valid_cancel_rollback();
}
