/* The baseline of the start-up benchmark: a program that does nothing, so
 * fork + exec + exit of it is the cost no server can go below. */
int main(void)
{
        return 0;
}
