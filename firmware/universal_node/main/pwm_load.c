#include "pwm_load.h"

#include "driver/ledc.h"
#include "esp_check.h"
#include "sdkconfig.h"

static const char *TAG = "PWM";

#define PWM_LOAD_MODE LEDC_LOW_SPEED_MODE
#define PWM_LOAD_TIMER LEDC_TIMER_0
#define PWM_LOAD_CHANNEL LEDC_CHANNEL_0
#define PWM_LOAD_FREQ_HZ 1000u
#define PWM_LOAD_MAX_DUTY ((1u << 13) - 1u)
#ifdef CONFIG_DCM_PWM_INVERT
#define PWM_LOAD_INVERT 1
#else
#define PWM_LOAD_INVERT 0
#endif

esp_err_t pwm_load_init(int gpio)
{
    const ledc_timer_config_t timer = {
        .speed_mode = PWM_LOAD_MODE,
        .duty_resolution = LEDC_TIMER_13_BIT,
        .timer_num = PWM_LOAD_TIMER,
        .freq_hz = PWM_LOAD_FREQ_HZ,
        .clk_cfg = LEDC_AUTO_CLK,
    };
    ESP_RETURN_ON_ERROR(ledc_timer_config(&timer), TAG, "timer");
    const ledc_channel_config_t channel = {
        .gpio_num = gpio,
        .speed_mode = PWM_LOAD_MODE,
        .channel = PWM_LOAD_CHANNEL,
        .timer_sel = PWM_LOAD_TIMER,
        .duty = 0,
        .hpoint = 0,
        .flags.output_invert = PWM_LOAD_INVERT,
    };
    return ledc_channel_config(&channel);
}

esp_err_t pwm_load_set(uint8_t percent)
{
    ESP_RETURN_ON_FALSE(percent <= 100, ESP_ERR_INVALID_ARG, TAG, "duty %u", percent);
    uint32_t duty = (PWM_LOAD_MAX_DUTY * percent + 50u) / 100u;
    ESP_RETURN_ON_ERROR(ledc_set_duty(PWM_LOAD_MODE, PWM_LOAD_CHANNEL, duty), TAG, "set");
    return ledc_update_duty(PWM_LOAD_MODE, PWM_LOAD_CHANNEL);
}
