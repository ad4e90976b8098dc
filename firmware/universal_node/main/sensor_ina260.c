#include "sensor_ina260.h"

#include "driver/i2c_master.h"
#include "esp_check.h"
#include "esp_log.h"
#include "sdkconfig.h"

static const char *TAG = "INA260";

#define INA260_REG_CURRENT 0x01u
#define INA260_REG_BUS_VOLTAGE 0x02u
#define INA260_REG_MANUFACTURER 0xFEu
#define INA260_MANUFACTURER_TI 0x5449u
#define INA260_ADDR_FIRST 0x40u
#define INA260_ADDR_LAST 0x4Fu
#define INA260_SCL_HZ 400000u

static i2c_master_bus_handle_t s_bus;
static i2c_master_dev_handle_t s_dev;

static esp_err_t ina260_read_reg(i2c_master_dev_handle_t dev, uint8_t reg, uint16_t *value)
{
    uint8_t raw[2];
    ESP_RETURN_ON_ERROR(i2c_master_transmit_receive(dev, &reg, 1, raw, sizeof(raw),
                                                    CONFIG_DCM_I2C_TIMEOUT_MS),
                        TAG, "read reg 0x%02x", reg);
    *value = (uint16_t)((raw[0] << 8) | raw[1]);
    return ESP_OK;
}

static esp_err_t ina260_attach(uint16_t addr)
{
    const i2c_device_config_t cfg = {
        .dev_addr_length = I2C_ADDR_BIT_LEN_7,
        .device_address = addr,
        .scl_speed_hz = INA260_SCL_HZ,
    };
    i2c_master_dev_handle_t dev;
    ESP_RETURN_ON_ERROR(i2c_master_bus_add_device(s_bus, &cfg, &dev), TAG, "add device");
    uint16_t id = 0;
    if (ina260_read_reg(dev, INA260_REG_MANUFACTURER, &id) != ESP_OK ||
        id != INA260_MANUFACTURER_TI) {
        i2c_master_bus_rm_device(dev);
        return ESP_ERR_NOT_FOUND;
    }
    s_dev = dev;
    return ESP_OK;
}

esp_err_t ina260_init(int sda_gpio, int scl_gpio)
{
    const i2c_master_bus_config_t bus_cfg = {
        .i2c_port = -1,
        .sda_io_num = sda_gpio,
        .scl_io_num = scl_gpio,
        .clk_source = I2C_CLK_SRC_DEFAULT,
        .glitch_ignore_cnt = 7,
        .flags.enable_internal_pullup = 1,
    };
    ESP_RETURN_ON_ERROR(i2c_new_master_bus(&bus_cfg, &s_bus), TAG, "bus");
    for (uint16_t addr = INA260_ADDR_FIRST; addr <= INA260_ADDR_LAST; addr++) {
        if (i2c_master_probe(s_bus, addr, CONFIG_DCM_I2C_TIMEOUT_MS) == ESP_OK &&
            ina260_attach(addr) == ESP_OK) {
            ESP_LOGI(TAG, "INA260 at 0x%02x", addr);
            return ESP_OK;
        }
    }
    return ESP_ERR_NOT_FOUND;
}

esp_err_t ina260_read(int32_t *voltage_mv, int32_t *current_cma)
{
    ESP_RETURN_ON_FALSE(s_dev != NULL, ESP_ERR_INVALID_STATE, TAG, "no sensor");
    uint16_t bus = 0;
    uint16_t current = 0;
    ESP_RETURN_ON_ERROR(ina260_read_reg(s_dev, INA260_REG_BUS_VOLTAGE, &bus), TAG, "voltage");
    ESP_RETURN_ON_ERROR(ina260_read_reg(s_dev, INA260_REG_CURRENT, &current), TAG, "current");
    /* LSBs: bus voltage 1.25 mV (unsigned), current 1.25 mA (two's complement) */
    *voltage_mv = (int32_t)(((uint32_t)bus * 125u + 50u) / 100u);
    *current_cma = (int32_t)(int16_t)current * 125;
    return ESP_OK;
}
